//! Request bodies: reading one within a size and a time limit ([`read`]), and never waiting for
//! the rest of a chunked body nobody reads ([`UnreadBody`]). What a body means is not decided here.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpRequest};
use futures_util::{Stream, StreamExt};

use super::error::ApiError;

/// Reads a body of at most `limit` bytes, whether sent with Content-Length or chunked, within
/// `timeout`. A larger Content-Length is refused before anything is read. actix-web bounds the
/// time a client takes to send a request's head (`client_request_timeout`), not its body, so a
/// client that stops sending would otherwise hold its connection for ever.
pub async fn read(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<web::BytesMut, ApiError> {
    if let Some(length) = request.headers().get(header::CONTENT_LENGTH) {
        // actix-web has refused a Content-Length that is not a number.
        let announced = length.to_str().ok().and_then(|l| l.parse::<u64>().ok());
        if announced.is_some_and(|announced| announced > limit as u64) {
            return Err(ApiError::PayloadTooLarge(limit));
        }
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|_| ApiError::InvalidRequest("unreadable request body".into()))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    actix_web::rt::time::timeout(timeout, read)
        .await
        .map_err(|_| ApiError::RequestTimeout(timeout.as_secs()))?
}

/// A chunked request body, shared by the handler (which may read it) and the response (which
/// keeps it until it is sent). When a handler answers without reading a chunked body to its end
/// (a refusal, a timeout, a route that takes no body) and drops it, actix-web keeps the
/// connection to read and discard the rest, for as long as the client takes, which may be for
/// ever; while the body is still held when the response has been sent, it closes the connection
/// instead (after `client_disconnect_timeout`). A body with a Content-Length needs none of this:
/// its connection is closed when it was not read to the end.
pub struct UnreadBody {
    /// Held, not read: its being held is what makes actix-web close the connection.
    _payload: Rc<RefCell<Payload>>,
}

impl UnreadBody {
    /// Takes a chunked body out of the request, leaving the handler a stream that reads it.
    pub fn take(request: &mut ServiceRequest) -> Option<UnreadBody> {
        if !request.headers().contains_key(header::TRANSFER_ENCODING) {
            return None;
        }
        let payload = Rc::new(RefCell::new(request.take_payload()));
        let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(SharedPayload(payload.clone()));
        request.set_payload(Payload::from(stream));
        Some(UnreadBody { _payload: payload })
    }

    /// Keeps the body until the response has been sent.
    pub fn keep_until_sent(
        kept: Option<UnreadBody>,
        response: ServiceResponse<BoxBody>,
    ) -> ServiceResponse<BoxBody> {
        match kept {
            None => response,
            Some(kept) => response.map_body(|_, body| BoxBody::new(KeptBody { body, _kept: kept })),
        }
    }
}

/// The handler's side of an [`UnreadBody`].
struct SharedPayload(Rc<RefCell<Payload>>);

impl Stream for SharedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.borrow_mut().poll_next_unpin(cx)
    }
}

/// A response body that holds the request's body until it has been sent.
struct KeptBody {
    body: BoxBody,
    _kept: UnreadBody,
}

impl MessageBody for KeptBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}
