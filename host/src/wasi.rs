//! WASI for the components a user opts in (`--policies-wasi`): a context that
//! grants nothing. Components built from other languages (Python with
//! componentize-py, JavaScript with componentize-js) import WASI because their
//! runtimes print, read clocks and seed random numbers; a Rust policy imports
//! none of it, and the host refuses a component that does unless the user
//! named it as one to run with WASI (see `docs/wasi.md`).
//!
//! What the context gives, interface by interface:
//! - files: no preopened directory, so no descriptor exists;
//! - environment, arguments, working directory: none; stdin: at its end;
//! - network: TCP, UDP and name lookups refused, every address denied;
//! - stdout and stderr: one bounded sink per instance, drained after every call
//!   ([`Captured`]): of a call's output, the first and the last half of
//!   [`OUTPUT_BYTES_PER_CALL`] are kept, the bytes between counted and dropped;
//! - clocks: virtual. Both start at zero (the wall clock at the Unix epoch) and
//!   move only when the rule sleeps, by the time it asked for, at once: a sleep
//!   never holds a call (the epoch deadline stops wasm code, not a host call
//!   that waits), and no real time reaches a rule;
//! - random: fixed pseudo-random bytes, the same every instance, so findings
//!   never depend on entropy;
//! - `exit`: ends the call with an error, and the instance is made anew.
//!
//! Host-side state is bounded too: [`MAX_WASI_RESOURCES`] live WASI handles
//! (streams, pollables) an instance, [`MAX_RANDOM_BYTES`] a random call.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView};

/// Bytes of stdout and stderr (together) kept from one call: the first half
/// and the last half of what it wrote. A Python traceback, at the end, survives
/// a flood of prints before it.
pub const OUTPUT_BYTES_PER_CALL: usize = 16 << 10;
/// Live WASI handles one instance may hold (wasmtime's default is a million).
pub const MAX_WASI_RESOURCES: usize = 4096;
/// Bytes one `get-random-bytes` call may ask for (wasmtime's default is 64 MiB).
pub const MAX_RANDOM_BYTES: u64 = 1 << 16;
/// Length of the fixed random stream before it repeats.
const RANDOM_STREAM_BYTES: usize = 4096;
/// The version of `wasi:clocks` wasmtime-wasi defines; components built for any
/// 0.2.x version link to it.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// The WASI state of one store.
pub struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
    output: Output,
    clock: VirtualClock,
}

impl WasiState {
    /// The deny-all context (module documentation). Building one costs microseconds.
    pub fn deny_all() -> WasiState {
        let output = Output::default();
        let clock = VirtualClock::default();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_WASI_RESOURCES);
        // The builder's defaults: stdin closed, no environment, no arguments, no
        // working directory, no preopened directory, every socket address denied.
        let ctx = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(clock.clone())
            .monotonic_clock(clock.clone())
            .secure_random(wasmtime_wasi::Deterministic::new(random_stream(0x7061_6c69_7361_6465)))
            .insecure_random(wasmtime_wasi::Deterministic::new(random_stream(0x7761_7369_2d69_6e73)))
            .insecure_random_seed(0x5061_6c69_7361_6465_2077_6173_6920_3031)
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        WasiState { ctx, table, output, clock }
    }

    /// What the instance wrote since the last call to this, if anything.
    pub fn take_output(&mut self) -> Option<Captured> {
        self.output.take()
    }

    pub fn view(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// Add WASI to `linker`, with the clock's subscriptions ready at once.
/// `state` finds the WASI state in the store's data.
pub fn add_to_linker<T>(linker: &mut Linker<T>, state: fn(&mut T) -> &mut WasiState) -> wasmtime::Result<()>
where
    T: wasmtime_wasi::WasiView + 'static,
{
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    // wasmtime-wasi's own subscriptions wait on the real clock, inside a host
    // call, for as long as asked (forever for a huge duration). These advance
    // the virtual clock instead and are ready at once.
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", move |mut cx: StoreContextMut<'_, T>, (duration,): (u64,)| {
        let wasi = state(cx.data_mut());
        wasi.clock.advance_by(duration);
        ready(&mut wasi.table)
    })?;
    clock.func_wrap("subscribe-instant", move |mut cx: StoreContextMut<'_, T>, (when,): (u64,)| {
        let wasi = state(cx.data_mut());
        wasi.clock.advance_to(when);
        ready(&mut wasi.table)
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A pollable that is always ready.
struct Ready;

#[wasmtime_wasi::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}

fn ready(table: &mut ResourceTable) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let resource = table.push(Ready)?;
    Ok((wasmtime_wasi::p2::subscribe(table, resource)?,))
}

/// `RANDOM_STREAM_BYTES` bytes of SplitMix64 from `seed`.
fn random_stream(mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(RANDOM_STREAM_BYTES);
    while out.len() < RANDOM_STREAM_BYTES {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// Nanoseconds since the instance was made, counting only the time its rule slept.
#[derive(Clone, Default)]
struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn advance_by(&self, ns: u64) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(t.saturating_add(ns)));
    }

    fn advance_to(&self, ns: u64) {
        self.0.fetch_max(ns, Ordering::Relaxed);
    }
}

impl HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.now_ns()
    }
}

impl HostWallClock for VirtualClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_ns())
    }
}

/// What a call wrote to stdout and stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The bytes kept, as text (invalid UTF-8 replaced), with a line saying how
    /// many were dropped between the first and the last part.
    pub text: String,
    /// Bytes written but not kept.
    pub dropped: u64,
}

impl Captured {
    /// The last line that is not blank: for a Python rule that failed, the
    /// exception. A Rust panic message after it (componentize-py's runtime
    /// panics on an uncaught exception: `thread '<unnamed>' (1) panicked at …`,
    /// its message and a `note:`) is not that line: the one before the panic is.
    pub fn last_line(&self) -> Option<&str> {
        let lines: Vec<&str> = self.text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let panic = lines.iter().rposition(|l| l.starts_with("thread '") && l.contains(" panicked at "));
        match panic {
            Some(at) if at > 0 => Some(lines[at - 1]),
            _ => lines.last().copied(),
        }
    }
}

/// The sink of stdout and stderr: the first half of the bound in `head`, the
/// latest bytes in `tail`, the rest counted.
#[derive(Default)]
struct Buffer {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: u64,
}

const HALF: usize = OUTPUT_BYTES_PER_CALL / 2;

impl Buffer {
    fn push(&mut self, bytes: &[u8]) {
        let room = HALF - self.head.len();
        let (head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(head);
        if rest.len() >= HALF {
            self.dropped += (self.tail.len() + rest.len() - HALF) as u64;
            self.tail.clear();
            self.tail.extend(&rest[rest.len() - HALF..]);
            return;
        }
        let over = (self.tail.len() + rest.len()).saturating_sub(HALF);
        self.tail.drain(..over);
        self.dropped += over as u64;
        self.tail.extend(rest);
    }

    fn take(&mut self) -> Option<Captured> {
        if self.head.is_empty() {
            return None;
        }
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "… ({} bytes dropped by the host: it keeps the first and the last {} KiB of a call's output)\n",
                self.dropped,
                HALF >> 10
            ));
        }
        let tail: Vec<u8> = self.tail.drain(..).collect();
        text.push_str(&String::from_utf8_lossy(&tail));
        let dropped = std::mem::take(&mut self.dropped);
        self.head.clear();
        Some(Captured { text, dropped })
    }
}

/// stdout and stderr of one instance: both write to the same buffer, in order.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Buffer>>);

impl Output {
    fn push(&self, bytes: &[u8]) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(bytes);
    }

    fn take(&self) -> Option<Captured> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl IsTerminal for Output {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Output {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Writes always succeed: what is beyond the bound is counted, not refused, so a
/// rule that prints too much loses output, not its call.
impl OutputStream for Output {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // The permit bounds one write's host-side copy, as wasmtime's own streams do.
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Output {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Output {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_keeps_the_first_and_last_halves_and_counts_the_rest() {
        let mut b = Buffer::default();
        assert_eq!(b.take(), None);
        b.push(b"hello\n");
        assert_eq!(b.take(), Some(Captured { text: "hello\n".into(), dropped: 0 }));
        assert_eq!(b.take(), None, "taking empties the buffer");

        let flood = vec![b'x'; 100_000];
        b.push(&flood);
        b.push(b"Traceback\nRuntimeError: boom\n");
        let c = b.take().unwrap_or_else(|| panic!("output"));
        let written = flood.len() + "Traceback\nRuntimeError: boom\n".len();
        assert_eq!(c.dropped as usize, written - OUTPUT_BYTES_PER_CALL);
        assert_eq!(c.last_line(), Some("RuntimeError: boom"));
        assert!(c.text.starts_with(&"x".repeat(HALF)), "the first half is kept");
        assert!(c.text.contains(&format!("… ({} bytes dropped by the host", c.dropped)));
        assert!(c.text.len() < OUTPUT_BYTES_PER_CALL + 200, "{} bytes kept", c.text.len());
    }

    #[test]
    fn the_last_line_is_the_exception_not_the_runtime_panic() {
        let text = "Traceback (most recent call last):\n  File \"/0/policy.py\", line 150, in evaluate\n\
                    RuntimeError: boom\n\nthread '<unnamed>' (1) panicked at runtime/src/lib.rs:1293:29:\n\
                    Python function threw an unexpected exception\n\
                    note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        let c = Captured { text: text.into(), dropped: 0 };
        assert_eq!(c.last_line(), Some("RuntimeError: boom"));
        let c = Captured { text: "one\ntwo\n\n".into(), dropped: 0 };
        assert_eq!(c.last_line(), Some("two"));
    }

    #[test]
    fn many_small_writes_are_bounded_like_one_large_one() {
        let mut b = Buffer::default();
        for i in 0..10_000 {
            b.push(format!("line {i}\n").as_bytes());
        }
        let c = b.take().unwrap_or_else(|| panic!("output"));
        assert!(c.text.starts_with("line 0\n"));
        assert_eq!(c.last_line(), Some("line 9999"));
        let written: usize = (0..10_000).map(|i| format!("line {i}\n").len()).sum();
        assert_eq!(c.dropped as usize, written - OUTPUT_BYTES_PER_CALL);
    }

    #[test]
    fn the_clock_moves_only_by_sleeps() {
        let clock = VirtualClock::default();
        assert_eq!(HostMonotonicClock::now(&clock), 0);
        assert_eq!(HostWallClock::now(&clock), Duration::ZERO);
        clock.advance_by(10_000_000_000);
        clock.advance_to(5);
        assert_eq!(HostMonotonicClock::now(&clock), 10_000_000_000);
        clock.advance_by(u64::MAX);
        assert_eq!(HostMonotonicClock::now(&clock), u64::MAX, "saturates");
    }

    #[test]
    fn random_bytes_are_fixed_and_not_a_short_cycle() {
        let a = random_stream(1);
        assert_eq!(a, random_stream(1));
        assert_ne!(a, random_stream(2));
        assert_eq!(a.len(), RANDOM_STREAM_BYTES);
        assert!(a.windows(8).skip(8).all(|w| w != &a[..8]), "no repeat within the stream");
    }
}
