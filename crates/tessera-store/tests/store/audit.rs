//! The audit log's table: appended in batches, read newest first with
//! filters or oldest first from a cursor, pruned by age.

use crate::Engine;
use tessera_store::*;

fn event(at: i64, name: &str, user_id: Option<i64>) -> AuditEvent {
    AuditEvent {
        at,
        event: name.into(),
        user_id,
        actor_id: None,
        ip: "192.0.2.1".into(),
        user_agent: "ua".into(),
        detail: "{\"username\":\"alice\"}".into(),
    }
}

pub async fn audit_events_are_kept_in_order_filtered_and_pruned(e: Engine) {
    let (_db, s) = e.store().await;
    let events: Vec<AuditEvent> = (0..1000)
        .map(|i| {
            let name = if i % 2 == 0 {
                "login_failed"
            } else {
                "login_succeeded"
            };
            event(100 + i, name, Some(i % 3))
        })
        .collect();
    s.append_audit(&events[..500]).await.unwrap();
    s.append_audit(&events[500..]).await.unwrap();
    let all = AuditFilter::default();
    let (count, newest) = s.audit_page(&all, 0, 10).await.unwrap();
    assert_eq!((count, newest.len()), (1000, 10));
    assert_eq!(newest[0].at, 1099);
    assert!(newest.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(newest[0].detail, "{\"username\":\"alice\"}");
    let failed = AuditFilter {
        event: Some("login_failed".into()),
        user_id: Some(0),
        since: Some(200),
        until: Some(300),
    };
    let (count, page) = s.audit_page(&failed, 0, 100).await.unwrap();
    // Even i in 100..=200 with i % 3 == 0: 0, 6, 12, ... 198 -> 17.
    assert_eq!(count, 17);
    assert!(
        page.iter()
            .all(|e| e.event == "login_failed" && e.user_id == Some(0))
    );
    assert!(page.iter().all(|e| (200..=300).contains(&e.at)));
    // From a cursor: oldest first, in pages, with the filters.
    let after = s.audit_after(&all, newest[2].id, 10).await.unwrap();
    assert_eq!(
        after.iter().map(|e| e.id).collect::<Vec<_>>(),
        [newest[1].id, newest[0].id]
    );
    let mut cursor = 0;
    let mut read = Vec::new();
    loop {
        let page = s.audit_after(&failed, cursor, 5).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.id;
        read.extend(page);
    }
    assert_eq!(read.len(), 17);
    assert!(read.windows(2).all(|w| w[0].id < w[1].id));
    assert!(
        read.iter()
            .all(|e| e.event == "login_failed" && e.user_id == Some(0))
    );
    assert_eq!(s.prune_audit(600).await.unwrap(), 500);
    assert_eq!(s.audit_page(&all, 0, 1).await.unwrap().0, 500);
}
