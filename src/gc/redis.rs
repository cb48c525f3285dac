//! Purging the registries' shared Redis blob-descriptor cache after a garbage collection
//! (cluster mode). GC does not touch the cache, and a stale one serves deleted blobs as empty
//! ones and lets a mount of a deleted blob succeed; `FLUSHDB` fixes both at once without a
//! restart (docs/registry-facts.md). The cache holds nothing else the registries cannot rebuild.
//!
//! Three commands need no client library: a few lines of RESP over a `TcpStream`, every read
//! bounded in size and time.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::registry_config::RedisCache;

/// Longest wait to connect, and for any one reply.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// A status or error reply is one short line; a longer one is not a Redis answer.
const MAX_REPLY: u64 = 1024;

/// `FLUSHDB` on the cache's database of every server named; the first failure is returned,
/// worded for the job's error (never with the password).
pub fn purge(cache: &RedisCache) -> Result<(), String> {
    for addr in &cache.addrs {
        purge_one(addr, cache).map_err(|e| {
            format!(
                "purging the registries' Redis blob-descriptor cache at {addr} failed ({e}); until \
                 it is purged (FLUSHDB on database {}) they may serve deleted blobs as empty ones",
                cache.db
            )
        })?;
    }
    Ok(())
}

fn purge_one(addr: &str, cache: &RedisCache) -> Result<(), String> {
    let target = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve it: {e}"))?
        .next()
        .ok_or("it resolves to no address")?;
    let stream = TcpStream::connect_timeout(&target, TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let mut conn = Connection {
        reader: BufReader::new(stream.try_clone().map_err(|e| e.to_string())?),
        writer: stream,
    };
    if let Some(password) = &cache.password {
        let mut auth = vec!["AUTH"];
        if let Some(user) = &cache.username {
            auth.push(user);
        }
        auth.push(password);
        // Redis's answer to a wrong password names no password; still, say only "AUTH".
        conn.command(&auth).map_err(|e| format!("AUTH: {e}"))?;
    }
    if cache.db != 0 {
        conn.command(&["SELECT", &cache.db.to_string()])
            .map_err(|e| format!("SELECT: {e}"))?;
    }
    conn.command(&["FLUSHDB"])
        .map_err(|e| format!("FLUSHDB: {e}"))
}

struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    /// Sends one command as a RESP array and expects `+OK` (or any status reply).
    fn command(&mut self, args: &[&str]) -> Result<(), String> {
        self.writer
            .write_all(&encode(args))
            .map_err(|e| e.to_string())?;
        // One deadline for the whole reply: a server that drips a byte at a time must not
        // hold the cluster's freeze for a read timeout per byte.
        let deadline = Instant::now() + TIMEOUT;
        let mut line = Vec::new();
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or("the server did not answer in time")?;
            self.writer
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            let buf = self.reader.fill_buf().map_err(|e| e.to_string())?;
            if buf.is_empty() {
                break;
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            line.extend_from_slice(&buf[..take]);
            self.reader.consume(take);
            if done {
                break;
            }
            if line.len() as u64 > MAX_REPLY {
                return Err("the server's answer is too long".into());
            }
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        match text.as_bytes().first() {
            Some(b'+') => Ok(()),
            Some(b'-') => Err(format!(
                "the server answered {}",
                text[1..].chars().take(200).collect::<String>()
            )),
            None => Err("the server closed the connection".into()),
            Some(_) => Err("the server's answer is not a Redis status reply".into()),
        }
    }
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// A server that answers each command with the next of `replies` and returns what it got.
    fn fake(replies: &'static [&'static str]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut got = Vec::new();
            for reply in replies {
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                s.write_all(reply.as_bytes()).unwrap();
            }
            got
        });
        (addr, handle)
    }

    fn cache(addr: String, password: Option<&str>, db: i64) -> RedisCache {
        RedisCache {
            addrs: vec![addr],
            username: None,
            password: password.map(str::to_string),
            db,
        }
    }

    #[test]
    fn a_purge_authenticates_selects_the_database_and_flushes_it() {
        let (addr, server) = fake(&["+OK\r\n", "+OK\r\n", "+OK\r\n"]);
        purge(&cache(addr, Some("pw"), 3)).unwrap();
        let got = String::from_utf8(server.join().unwrap()).unwrap();
        assert_eq!(
            got,
            "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*1\r\n$7\r\nFLUSHDB\r\n"
        );
    }

    #[test]
    fn an_error_reply_fails_the_purge_without_the_password() {
        let (addr, server) = fake(&["-WRONGPASS invalid username-password pair\r\n"]);
        let err = purge(&cache(addr, Some("hunter2"), 0)).unwrap_err();
        assert!(err.contains("AUTH") && err.contains("WRONGPASS"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        server.join().unwrap();
    }

    #[test]
    fn a_server_that_is_not_there_fails_the_purge() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = purge(&cache(addr, None, 0)).unwrap_err();
        assert!(err.contains("FLUSHDB on database 0"), "{err}");
    }
}
