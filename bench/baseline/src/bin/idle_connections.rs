//! Opens many idle keep-alive connections to a server, for `bench/run.sh` to
//! read the server's memory while they are open.
//!
//! Usage: `idle_connections HOST:PORT COUNT SECONDS`
//!
//! Opens COUNT TCP connections to HOST:PORT one after the other, sends
//! `GET /healthz HTTP/1.1` on each and reads the whole answer (so that each
//! connection has served one request and sits idle, kept alive), then holds
//! them all open for SECONDS seconds and closes them. Prints, each on its own
//! line: `opened N` and `answered_200 N` once the connections are open, then
//! `ready` while it holds them, and `closed` at the end. Stops opening at the
//! first failure (said on stderr), still holds the connections it has, and
//! then exits non-zero. The process needs COUNT file descriptors and a few
//! more: raise `ulimit -n` first.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

/// The request sent on each connection.
const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads one HTTP/1.1 answer with a `Content-Length` body; returns its status.
fn read_answer(stream: &mut TcpStream) -> std::io::Result<u16> {
    let mut buffer = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let head_end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(invalid("connection closed before the answer's head"));
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > 64 * 1024 {
            return Err(invalid("answer head over 64 KiB"));
        }
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| invalid("head not UTF-8"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .ok_or_else(|| invalid("no Content-Length"))?;
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(invalid("connection closed before the answer's body"));
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

/// Opens one connection and has one request answered on it.
fn open(addr: &str) -> std::io::Result<(TcpStream, u16)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(REQUEST)?;
    let status = read_answer(&mut stream)?;
    Ok((stream, status))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [addr, count, seconds] => count
            .parse::<usize>()
            .ok()
            .zip(seconds.parse::<u64>().ok())
            .map(|(count, seconds)| (addr.clone(), count, seconds)),
        _ => None,
    };
    let Some((addr, count, seconds)) = parsed else {
        eprintln!("usage: idle_connections HOST:PORT COUNT SECONDS");
        return ExitCode::from(2);
    };
    let mut streams = Vec::with_capacity(count);
    let mut answered_200 = 0usize;
    let mut failed = false;
    for i in 0..count {
        match open(&addr) {
            Ok((stream, status)) => {
                if status == 200 {
                    answered_200 += 1;
                }
                streams.push(stream);
            }
            Err(e) => {
                eprintln!("idle_connections: connection {} of {count}: {e}", i + 1);
                failed = true;
                break;
            }
        }
    }
    println!("opened {}", streams.len());
    println!("answered_200 {answered_200}");
    println!("ready");
    std::thread::sleep(Duration::from_secs(seconds));
    drop(streams);
    println!("closed");
    if failed || answered_200 < count {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
