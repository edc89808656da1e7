//! docs/SECURITY.md names, for every attack, the test that proves Tessera
//! refuses it: each name must be a test that exists.

use std::path::Path;

fn root() -> String {
    format!("{}/../..", super::harness::package_dir().display())
}

/// Where a `file::function` reference of SECURITY.md lives.
fn source_of(reference: &str) -> Option<(String, String)> {
    let (file, function) = reference.rsplit_once("::")?;
    let root = root();
    let candidates = [
        format!("{root}/crates/tessera-server/tests/server/{file}.rs"),
        format!("{root}/crates/tessera-server/tests/{file}.rs"),
        format!("{root}/crates/tessera-core/tests/{file}.rs"),
        format!("{root}/crates/{file}.rs"),
        format!("{root}/crates/{file}/mod.rs"),
        // A module's unit tests may sit in a file of their own.
        format!("{root}/crates/{file}/tests.rs"),
    ];
    let declares = |p: &String| {
        std::fs::read_to_string(p).is_ok_and(|source| {
            source.contains(&format!("fn {function}()"))
                || source.contains(&format!("fn {function}("))
        })
    };
    let path = candidates
        .iter()
        .find(|p| declares(p))
        .or_else(|| candidates.iter().find(|p| Path::new(p).exists()))?;
    Some((path.clone(), function.to_owned()))
}

#[test]
fn every_test_named_in_security_md_exists() {
    let doc = std::fs::read_to_string(format!("{}/docs/SECURITY.md", root())).unwrap();
    let mut checked = 0;
    for line in doc.lines().filter(|l| l.starts_with('|')) {
        let Some(tests) = line.trim_end_matches('|').rsplit('|').next() else {
            continue;
        };
        for reference in tests.split('`').skip(1).step_by(2) {
            if !reference.contains("::") {
                continue;
            }
            let (path, function) =
                source_of(reference).unwrap_or_else(|| panic!("no file for `{reference}`"));
            let source = std::fs::read_to_string(&path).unwrap();
            let declared = source.contains(&format!("fn {function}()"))
                || source.contains(&format!("fn {function}("));
            assert!(declared, "`{reference}`: no fn {function} in {path}");
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} test references found");
}
