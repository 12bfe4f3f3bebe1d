//! Logging: the subscriber that writes human or JSON lines to stderr in batches, and the span
//! tracing-actix-web opens for every request. What is audited, and with which fields, is decided in
//! `service`.
//!
//! Batched, not tracing-appender's non-blocking writer: on this machine (AMD EPYC, one thread
//! logging audit-sized lines at 1–20k a second, process CPU, alternating runs) that cost 14–22 µs
//! more CPU per line, a thread wake-up and a write for each line.

use std::fmt::{self, Write as _};
use std::io::{IsTerminal, Stderr, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Span, Subscriber};
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::audit::TrailLayer;
use crate::config::LogFormat;

/// Longest a log line waits in memory before it is written. One write per interval instead of one
/// per line: a write to a log file costs about 4 µs, as much as formatting the line did.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Waiting lines beyond this many bytes are written at once by the thread that logs, so memory
/// stays bounded and a slow reader of stderr slows the server down instead of losing lines.
const FLUSH_BYTES: usize = 64 * 1024;

/// Installs the global subscriber: `level` (or `RUST_LOG`) filters, lines go to stderr, colour only
/// when stderr is a terminal and `NO_COLOR` is unset; audit events also go to the recent audit
/// trail once one is connected (`audit`). Keep the guard until the program ends:
/// dropping it writes every line still waiting.
pub fn init(format: LogFormat, level: &str) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let stderr = Batched::start(std::io::stderr());
    let colour = colour_wanted();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(stderr.clone());
    match format {
        LogFormat::Human if colour => builder.finish().with(TrailLayer).init(),
        LogFormat::Human => builder
            .event_format(Plain)
            .fmt_fields(PlainFields)
            .finish()
            .with(TrailLayer)
            .init(),
        // The request's span (with its id) once, as `span`; the list of entered spans would repeat it.
        LogFormat::Json => builder
            .json()
            .with_span_list(false)
            .finish()
            .with(TrailLayer)
            .init(),
    }
    LogGuard(stderr)
}

/// Colour codes help a person at a terminal and clutter every file and log collector.
fn colour_wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The human line without colour, as tracing-subscriber's default format writes it
/// (`<time> <level> <span>{<fields>}: <target>: <message> <fields>`), but written straight: that
/// format passes every part through a colour style even when colour is off, which cost ~1% of the
/// CPU of a token request. The fields, and the escaping of what they hold, are the field
/// formatter's, as there.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if SystemTime.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        write!(writer, " {} ", level_column(meta.level()))?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                seen = true;
                writer.write_str(span.metadata().name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(writer, "{{{fields}}}")?;
                    }
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        write!(writer, "{}: ", meta.target())?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The fields without colour, as tracing-subscriber's default field formatter writes them
/// (`name=value` apart by spaces: values by `Debug`, so text is quoted and escaped and a field
/// cannot forge a line; the message bare but [`Sanitized`]; an error with its sources), but
/// written straight: that formatter paints every name and `=` through a colour style even when
/// colour is off, which cost ~2% of the CPU of a token request (the audit event has a dozen
/// fields).
struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    fn write(&mut self, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
        let name = field.name();
        // A `log` record's own metadata, which the event line already shows as target and level.
        if name.starts_with("log.") {
            return Ok(());
        }
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        if name == "message" {
            return write!(self.writer, "{:?}", Sanitized(value));
        }
        self.writer
            .write_str(name.strip_prefix("r#").unwrap_or(name))?;
        write!(self.writer, "={value:?}")
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let text = Sanitized(format_args!("{value}"));
        match value.source() {
            Some(source) => self.record_debug(
                field,
                &format_args!("{text} {}.sources={}", field.name(), Sources(source)),
            ),
            None => self.record_debug(field, &format_args!("{text}")),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = self.write(field, value);
        }
    }
}

/// An error's chain of sources as a list, `[first, second]`.
struct Sources<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut next = Some(self.0);
        while let Some(error) = next {
            list.entry(&Sanitized(format_args!("{error}")));
            next = error.source();
        }
        list.finish()
    }
}

/// Text with the control characters a terminal would act on (escape, bell, backspace, form feed,
/// delete, and the 8-bit controls) written as escapes (`\x1b`, `\u{9b}`), as tracing-subscriber
/// writes messages and errors: a logged message cannot recolour or rewrite the terminal of
/// whoever reads the log.
struct Sanitized<T>(T);

impl<T: fmt::Debug> fmt::Debug for Sanitized<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(Defanging(f), "{:?}", self.0)
    }
}

impl<T: fmt::Display> fmt::Display for Sanitized<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(Defanging(f), "{}", self.0)
    }
}

/// The writer behind [`Sanitized`]: safe runs of text pass through whole.
struct Defanging<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for Defanging<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut safe_from = 0;
        for (at, c) in text.char_indices() {
            let code = u32::from(c);
            let escaped = match c {
                '\x07' | '\x08' | '\x0c' | '\x1b' | '\x7f' => format_args!("\\x{code:02x}"),
                '\u{80}'..='\u{9f}' => format_args!("\\u{{{code:x}}}"),
                _ => continue,
            };
            self.0.write_str(&text[safe_from..at])?;
            self.0.write_fmt(escaped)?;
            safe_from = at + c.len_utf8();
        }
        self.0.write_str(&text[safe_from..])
    }
}

/// A level right-aligned in five columns, as tracing-subscriber writes it.
fn level_column(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

/// Writes the lines still waiting when dropped; lines logged after that are written at once.
pub struct LogGuard(Batched<Stderr>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A writer written in batches: lines gather in memory and a background thread writes them out
/// every [`FLUSH_INTERVAL`]; [`FLUSH_BYTES`] of them are written at once. Every write happens under
/// the one lock, so lines keep their order. Write errors are ignored: a closed stderr must not stop
/// the server, and its lines have nowhere else to go.
struct Batched<W: Write + Send + 'static>(Arc<Mutex<Pending<W>>>);

impl<W: Write + Send + 'static> Clone for Batched<W> {
    fn clone(&self) -> Self {
        Batched(self.0.clone())
    }
}

struct Pending<W> {
    out: W,
    bytes: Vec<u8>,
    /// Set by [`Batched::close`]: nothing flushes any more, so lines are written as they come.
    closed: bool,
}

impl<W: Write> Pending<W> {
    fn write_out(&mut self) {
        if !self.bytes.is_empty() {
            let _ = self.out.write_all(&self.bytes);
            let _ = self.out.flush();
            self.bytes.clear();
        }
    }
}

impl<W: Write + Send + 'static> Batched<W> {
    fn start(out: W) -> Batched<W> {
        let batched = Batched(Arc::new(Mutex::new(Pending {
            out,
            bytes: Vec::with_capacity(FLUSH_BYTES),
            closed: false,
        })));
        let flusher = batched.clone();
        let started = thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || loop {
                thread::sleep(FLUSH_INTERVAL);
                let mut pending = flusher.lock();
                if pending.closed {
                    break;
                }
                pending.write_out();
            });
        if started.is_err() {
            // No thread, no timed flushes: write every line as it comes.
            batched.lock().closed = true;
        }
        batched
    }

    /// Writes what is waiting; from now on lines are written as they come.
    fn close(&self) {
        let mut pending = self.lock();
        pending.write_out();
        pending.closed = true;
    }

    /// The lock, even if a thread panicked while holding it (the buffer is still a valid buffer).
    fn lock(&self) -> MutexGuard<'_, Pending<W>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<W: Write + Send + 'static> Write for &Batched<W> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.lock();
        pending.bytes.extend_from_slice(line);
        if pending.closed || pending.bytes.len() >= FLUSH_BYTES {
            pending.write_out();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.lock().write_out();
        Ok(())
    }
}

impl<'a, W: Write + Send + 'static> MakeWriter<'a> for Batched<W> {
    type Writer = &'a Batched<W>;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// The root span of a request: its id (tracing-actix-web's UUID v4, which the audit events of the
/// request carry through this span), method and path. Everything else an operator needs about a
/// token request is in its audit event; the HTTP status and latency are in the metrics.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request.extensions().get::<RequestId>().copied();
        tracing::info_span!(
            "request",
            request_id = id.map(tracing::field::display),
            method = %request.method(),
            path = request.path(),
        )
    }

    fn on_request_end<B: MessageBody>(_span: Span, _outcome: &Result<ServiceResponse<B>, Error>) {}
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::fmt::format::DefaultFields;
    use tracing_subscriber::Registry;

    use super::*;

    /// An output the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn closing_writes_what_waits_and_later_lines_at_once() {
        let out = Shared::default();
        let batched = Batched::start(out.clone());
        (&batched).write_all(b"one\n").unwrap();
        (&batched).write_all(b"two\n").unwrap();
        batched.close();
        assert_eq!(out.text(), "one\ntwo\n");
        (&batched).write_all(b"three\n").unwrap();
        assert_eq!(out.text(), "one\ntwo\nthree\n");
    }

    #[test]
    fn a_full_batch_is_written_by_the_thread_that_logs() {
        let out = Shared::default();
        let batched = Batched::start(out.clone());
        let line = [b'x'; 1024];
        // Twice as much as one batch: at least one batch is due even if a timed flush came between.
        for _ in 0..2 * FLUSH_BYTES / line.len() {
            (&batched).write_all(&line).unwrap();
        }
        assert!(out.0.lock().unwrap().len() >= FLUSH_BYTES);
        batched.close();
    }

    #[test]
    fn lines_wait_at_most_one_interval() {
        let out = Shared::default();
        let batched = Batched::start(out.clone());
        (&batched).write_all(b"one\n").unwrap();
        thread::sleep(FLUSH_INTERVAL * 3);
        assert_eq!(out.text(), "one\n");
        batched.close();
    }

    /// What `emit` logs, as written by a subscriber with `format` and `fields`, the timestamps cut
    /// off.
    fn lines_without_time<F, N>(format: F, fields: N) -> Vec<String>
    where
        F: FormatEvent<Registry, N> + Send + Sync + 'static,
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let out = Shared::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .fmt_fields(fields)
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        out.text()
            .lines()
            .map(|line| line.split_once(' ').expect("a timestamp").1.to_owned())
            .collect()
    }

    /// An error with a source, as a dependency's error would be logged.
    #[derive(Debug)]
    struct Failed(fmt::Error);

    impl fmt::Display for Failed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("the store\x1b[2J failed\u{9b}")
        }
    }

    impl std::error::Error for Failed {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn emit() {
        tracing::warn!("outside any span");
        let outer = tracing::info_span!(
            "request",
            request_id = "1",
            path = "/a\nb",
            status = tracing::field::Empty
        );
        outer.record("status", 401);
        let _outer = outer.enter();
        let inner = tracing::info_span!("inner");
        let _inner = inner.enter();
        tracing::info!(
            target: "audit",
            outcome = "granted",
            subject = "evil\n2026-01-01T00:00:00Z  INFO forged",
            r#type = "quote\" and \\",
            granted = %"repository:a/b:pull",
            rules = ?["one", "two"],
            count = 3,
            fresh = true,
            "message with \x1b[31m an escape, \x07\x08\x0c\x7f and \u{85}"
        );
        let failed = Failed(fmt::Error);
        tracing::error!(
            error = &failed as &(dyn std::error::Error + 'static),
            plain = &fmt::Error as &(dyn std::error::Error + 'static),
            "request failed"
        );
    }

    #[test]
    fn the_plain_line_is_tracing_subscribers_full_line_escapes_included() {
        let plain = lines_without_time(Plain, PlainFields);
        let full = lines_without_time(
            tracing_subscriber::fmt::format().with_ansi(false),
            DefaultFields::new(),
        );
        assert_eq!(plain, full);
        assert_eq!(plain.len(), 3, "{plain:?}");
        assert!(
            plain[0].starts_with(" WARN portcullis::telemetry::tests: outside"),
            "{plain:?}"
        );
        for line in &plain {
            assert!(
                !line.contains(['\x1b', '\x07', '\u{85}', '\u{9b}']),
                "{line:?}"
            );
        }
    }
}
