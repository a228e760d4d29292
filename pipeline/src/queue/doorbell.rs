//! Wake-ups across processes for the table queue, on one machine.
//!
//! A send into the queue table wakes receivers in its own process through a
//! [`Notify`]; an API and a worker in separate processes share no memory, so
//! without more the worker would only see the message at its next poll of
//! the table. The doorbell closes that gap: each receiving process binds a
//! Unix datagram socket in a directory beside the database, and a sender
//! rings every socket there after its insert. A ring carries no data: it
//! only makes the receiver look at the table now.
//!
//! Everything is best effort. A ring that cannot be delivered (a socket left
//! behind by a process that died is removed when found) costs nothing but
//! latency: receivers still poll the table as before.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Notify;

/// The directory that the processes of one deployment share.
#[derive(Clone, Debug)]
pub struct Doorbell {
    dir: PathBuf,
}

/// A bound doorbell: wakes `wake` whenever it is rung; unbinds when dropped.
#[derive(Debug)]
pub struct Listener {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

const SUFFIX: &str = ".sock";

impl Doorbell {
    /// A doorbell in `dir`, which is created when the first process listens.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Binds this process's socket and wakes `wake` on every ring. Must run
    /// inside a Tokio runtime.
    ///
    /// # Errors
    /// When the directory cannot be created or the socket cannot be bound
    /// (a path over the 108 bytes a Unix socket address holds, say).
    pub fn listen(&self, wake: Arc<Notify>) -> std::io::Result<Listener> {
        std::fs::create_dir_all(&self.dir)?;
        let name = uuid::Uuid::new_v4().simple().to_string();
        let path = self.dir.join(format!("{}{SUFFIX}", &name[..12]));
        let socket = tokio::net::UnixDatagram::bind(&path)?;
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            while socket.recv(&mut buf).await.is_ok() {
                wake.notify_waiters();
            }
        });
        Ok(Listener { path, task })
    }

    /// Rings every listening process. Never fails and never blocks: a
    /// socket whose buffer is full has been rung already.
    pub fn ring(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let Ok(sender) = std::os::unix::net::UnixDatagram::unbound() else { return };
        if sender.set_nonblocking(true).is_err() {
            return;
        }
        for entry in entries.flatten() {
            let path = entry.path();
            if !is_socket_name(&path) {
                continue;
            }
            match sender.send_to(b"!", &path) {
                // Nobody is bound there: a process that died without unbinding.
                Err(err) if matches!(err.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) => {
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
    }
}

fn is_socket_name(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(SUFFIX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_ring_wakes_every_listener_and_clears_a_dead_ones_socket() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bell = Doorbell::new(dir.path().join("bell"));
        let (first, second) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let _a = bell.listen(first.clone()).expect("bind");
        let _b = bell.listen(second.clone()).expect("bind");
        // A process that died leaves its socket file, bound by nobody.
        let dead_path = dir.path().join("bell").join(format!("deadbeef0000{SUFFIX}"));
        drop(std::os::unix::net::UnixDatagram::bind(&dead_path).expect("bind"));

        let (woke_first, woke_second) = (first.notified(), second.notified());
        bell.ring();

        let both = async { tokio::join!(woke_first, woke_second) };
        tokio::time::timeout(Duration::from_secs(5), both).await.expect("both listeners were woken");
        assert!(!dead_path.exists(), "the dead listener's socket is removed");
    }

    #[tokio::test]
    async fn ringing_with_nobody_listening_leaves_no_trace() {
        let dir = tempfile::tempdir().expect("temp dir");
        let never_made = dir.path().join("never-made");
        Doorbell::new(&never_made).ring();
        assert!(!never_made.exists(), "only a listener creates the directory");
    }
}
