//! `WriteTimeout`: a socket whose writes fail once they have made no progress for a while.
//!
//! hyper writes a response as fast as the client reads it. A client that never reads would keep
//! its connection, and the whole response buffered for it, for as long as it likes; thirty such
//! clients asking for large receives pinned over a gigabyte. With this wrapper a write that stays
//! blocked for the timeout fails with `TimedOut`, hyper drops the connection, and the buffered
//! response is freed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

pub struct WriteTimeout<T> {
    inner: T,
    timeout: Duration,
    /// Armed when a write first blocks, disarmed when any write makes progress.
    blocked: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteTimeout<T> {
    pub fn new(inner: T, timeout: Duration) -> Self {
        WriteTimeout { inner, timeout, blocked: None }
    }

    /// Turns a pending write into `TimedOut` once the client has read nothing for `timeout`.
    fn check<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match poll {
            Poll::Pending => {
                let timeout = self.timeout;
                let blocked = self.blocked.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match blocked.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client read nothing for {} s", timeout.as_secs()),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            ready => {
                self.blocked = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_times_out_and_one_that_progresses_does_not() {
        // A pipe with a 16-byte buffer that nobody reads.
        let (writer, reader) = tokio::io::duplex(16);
        let mut writer = WriteTimeout::new(writer, Duration::from_secs(30));
        let error = writer.write_all(&[0; 64]).await.expect_err("the reader never reads");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);

        // A reader that keeps taking bytes, slowly, never trips it.
        let (writer, mut slow) = tokio::io::duplex(16);
        let mut writer = WriteTimeout::new(writer, Duration::from_secs(30));
        let reading = tokio::spawn(async move {
            let mut buf = [0; 16];
            let mut total = 0;
            while total < 256 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                total += slow.read(&mut buf).await.unwrap();
            }
        });
        writer.write_all(&[0; 256]).await.expect("progress resets the timeout");
        reading.await.unwrap();
        drop(reader);
    }
}
