//! The response body of a WebSocket whose frames are queued by others (a
//! hub): the frames actix-ws encodes for the socket task (pings, pongs, the
//! close) and the socket's bounded queue of pre-encoded frames. Whatever is
//! ready goes out in one write, and a frame reaches the connection with one
//! wake-up of its task and no copy. Used by `/ws/monitor` and the chat sockets.

use crate::events::hub::{Lagging, concat};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::Bytes;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// At most this much is gathered into one write.
const MAX_WRITE: usize = 64 * 1024;

/// See the module documentation.
pub struct QueueBody<S: Lagging> {
    control: BoxBody,
    frames: mpsc::Receiver<Bytes>,
    socket: Arc<S>,
}

impl<S: Lagging> QueueBody<S> {
    /// The body of `socket`: actix-ws's `control` frames and the queue `frames`.
    pub fn new(control: BoxBody, frames: mpsc::Receiver<Bytes>, socket: Arc<S>) -> Self {
        Self {
            control,
            frames,
            socket,
        }
    }
}

impl<S: Lagging> MessageBody for QueueBody<S> {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let mut frames: Vec<Bytes> = Vec::new();
        match Pin::new(&mut this.control).poll_next(cx) {
            // The close frame was written (or the socket task is gone).
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
            Poll::Ready(Some(Ok(b))) => frames.push(b),
            Poll::Pending => {}
        }
        // A socket told to close (4008) takes no more frames: its close
        // frame goes next.
        let mut len: usize = frames.iter().map(Bytes::len).sum();
        while len < MAX_WRITE && !this.socket.lagged() {
            match this.frames.poll_recv(cx) {
                Poll::Ready(Some(frame)) => {
                    len += frame.len();
                    frames.push(frame);
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        if frames.is_empty() {
            return Poll::Pending;
        }
        Poll::Ready(Some(Ok(concat(frames.iter()))))
    }
}
