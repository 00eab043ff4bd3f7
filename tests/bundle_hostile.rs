//! Hostile bundle layouts and tarballs, through the real binary: what a
//! layout's files are (symbolic links, devices, named pipes, sockets, files
//! over their limits) and how big a tarball is must neither hang `palisade`
//! nor make it read without bound. Every run has a hard time limit, and the
//! runs where memory is the question are measured: the child's peak resident
//! set, from the `rusage` that `wait4` returns when it reaps it.
//!
//! What the code before O_NOFOLLOW|O_NONBLOCK and streamed tarballs did with
//! these inputs is noted at each test: those are the ways each test fails.
//! Four tests fail on the current code, each for a defect its comment names:
//! sockets, linked directories, signing through a linked tarball, PAX sizes.

mod common;

use std::ffi::CString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::measure::{run_measured, try_run_measured};
use common::{copy_layout, palisade, root, run_within, succeeded};
use serde_json::Value;
use sha2::Digest as _;

/// What a refusal may take: a hang (an open or read that blocks) fails here.
const LIMIT: Duration = Duration::from_secs(20);
/// A run that reads what it should not is killed at this resident set
/// rather than left to take the machine's memory.
const KILL_RSS_KIB: u64 = 1 << 20;
/// Peak resident set of a refused bundle.
const SMALL_RSS_KIB: u64 = 200 << 10;
const MIB: u64 = 1 << 20;
/// The host's limits (host/src/bundle/mod.rs, layout.rs).
const MAX_BLOB_BYTES: u64 = 64 << 20;
const MAX_MANIFEST_BYTES: u64 = 4 << 20;
const MAX_MARKER_BYTES: u64 = 4096;
const SMALL: [&str; 3] = ["pss-privileged", "pss-run-as-non-root", "image-tag"];

// ---------------------------------------------------------------- running

/// `palisade check --bundle <bundle> examples/`.
fn check(bundle: &Path) -> Command {
    let mut cmd = palisade();
    cmd.current_dir(root()).args(["check", "--format", "json", "--bundle"]).arg(bundle).arg(root().join("examples"));
    cmd
}

fn inspect(bundle: &Path) -> Command {
    let mut cmd = palisade();
    cmd.args(["bundle", "inspect"]).arg(bundle);
    cmd
}

/// Run with the hard limit, expect exit 2, return stderr; print what it took.
fn refused(label: &str, cmd: &mut Command) -> String {
    let start = Instant::now();
    let out = run_within(cmd, LIMIT);
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("{label}: exit {:?} in {:.0} ms: {}", out.status.code(), took.as_secs_f64() * 1e3, err.trim());
    assert_eq!(
        out.status.code(),
        Some(2),
        "{label}: expected exit 2\nstdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(took < Duration::from_secs(5), "{label}: a refusal took {took:?}");
    err
}

/// Run measured, expect exit 2 and a small peak, return stderr.
fn refused_small(label: &str, cmd: &mut Command) -> String {
    let m = run_measured(cmd, LIMIT, KILL_RSS_KIB);
    let err = m.stderr();
    println!("{label}: {m}: {}", err.trim());
    assert_eq!(m.code(), Some(2), "{label}: expected exit 2\nstderr: {err}");
    assert!(m.took < Duration::from_secs(5), "{label}: a refusal took {:?}", m.took);
    assert!(m.peak_rss_kib < SMALL_RSS_KIB, "{label}: peak RSS {} MiB", m.peak_rss_kib >> 10);
    err
}

/// The findings of a `check --format json` run, sorted, as comparable JSON.
fn findings(label: &str, out: &Output) -> Value {
    let code = out.status.code();
    assert!(matches!(code, Some(0 | 1)), "{label}: exit {code:?}: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{label}: no report ({code:?}, {e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert!(report["errors"].as_array().unwrap().is_empty(), "{label}: errors: {}", report["errors"]);
    let mut list = report["findings"].as_array().unwrap().clone();
    list.sort_by_key(|f| f.to_string());
    assert!(!list.is_empty(), "{label}: no findings");
    Value::Array(list)
}

fn ok(cmd: &mut Command) -> String {
    let out = run_within(cmd, LIMIT);
    succeeded(cmd, &out)
}

// ---------------------------------------------------------------- bundles

/// A bundle of a few built-in components (a layout directory, or a `.tar`).
fn small_bundle(output: &Path) -> String {
    let mut cmd = palisade();
    cmd.args(["bundle", "build", "--name", "small", "--version", "1.0.0", "--output"]).arg(output);
    for name in SMALL {
        cmd.arg("--policies").arg(root().join("target").join("components").join(format!("{name}.wasm")));
    }
    ok(&mut cmd)
}

/// The default bundle (the 51 built-in policies) as a `.tar`.
fn default_bundle(output: &Path) -> String {
    ok(palisade().args(["bundle", "build", "--name", "hardened", "--version", "1.0.0", "--output"]).arg(output))
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap())
}

/// A layout's pieces: (root index, first manifest, its layer).
fn pieces(layout: &Path) -> (String, String, String) {
    let read = |p: &Path| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let index = read(&layout.join("index.json"));
    let root_digest = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let root_index = read(&blob_path(layout, &root_digest));
    let manifest_digest = root_index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let manifest = read(&blob_path(layout, &manifest_digest));
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_string();
    (root_digest, manifest_digest, layer)
}

fn symlink(target: &Path, at: &Path) {
    let _ = std::fs::remove_file(at);
    std::os::unix::fs::symlink(target, at).unwrap();
}

fn mkfifo(at: &Path) {
    let _ = std::fs::remove_file(at);
    let c = CString::new(at.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}: {}", at.display(), std::io::Error::last_os_error());
}

// ---------------------------------------------------------------- tarballs

fn ustar(size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

/// Where the archive's entries end (its end-of-archive zero blocks start).
fn end_of_entries(path: &Path) -> u64 {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut end = 0;
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        end = entry.raw_file_position() + entry.size().div_ceil(512) * 512;
    }
    end
}

/// Append entries to a tarball, each written from a reader (streamed: the
/// test never holds an entry in memory).
fn append_to_tar(path: &Path, entries: Vec<(String, u64, Box<dyn Read>)>) {
    let end = end_of_entries(path);
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(end).unwrap();
    file.seek(SeekFrom::Start(end)).unwrap();
    let mut builder = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file));
    for (name, size, data) in entries {
        builder.append_data(&mut ustar(size), &name, data.take(size)).unwrap();
    }
    builder.into_inner().unwrap().flush().unwrap();
}

fn zeros(size: u64) -> Box<dyn Read> {
    Box::new(std::io::repeat(0).take(size))
}

/// The sha256 of a stream, without holding it.
fn sha256_of(mut data: impl Read) -> String {
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut data, &mut hasher).unwrap();
    format!("{:x}", hasher.finalize())
}

/// Every entry of a tarball: name → (size, sha256 of its bytes).
fn tar_entries(path: &Path) -> Vec<(String, u64, String)> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let size = entry.size();
        out.push((name, size, sha256_of(&mut entry)));
    }
    out
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

// ================================================================ 1, 2

/// Case 1: `oci-layout` a symbolic link to /dev/zero. The old code read it with
/// `std::fs::read_to_string`, which follows the link and, with no size to go
/// by (a device's st_size is 0), grows a String of NULs (valid UTF-8) until
/// allocation fails: here, killed past 1 GiB resident (or past the time
/// limit), so the exit-2, message and RSS assertions all fail.
#[test]
fn oci_layout_linked_to_dev_zero_is_refused_at_once_in_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("small");
    small_bundle(&layout);
    symlink(Path::new("/dev/zero"), &layout.join("oci-layout"));
    for (label, mut cmd) in [("check, oci-layout -> /dev/zero", check(&layout)), ("inspect", inspect(&layout))] {
        let err = refused_small(label, &mut cmd);
        assert!(err.contains("oci-layout"), "{label}: names the file: {err}");
        assert!(err.contains("symbolic link") && err.contains("regular files only"), "{label}: {err}");
    }
}

/// Case 2: No symbolic link inside a layout, even to a good file: `oci-layout`
/// and `index.json` linked to valid copies elsewhere are refused. (The old
/// code followed both links and ran the bundle.)
#[test]
fn layout_files_linked_to_valid_copies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("small");
    small_bundle(&layout);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    for file in ["oci-layout", "index.json"] {
        std::fs::copy(layout.join(file), elsewhere.join(file)).unwrap();
    }
    // The layout runs as built.
    findings("as built", &run_within(&mut check(&layout), LIMIT));

    symlink(&elsewhere.join("oci-layout"), &layout.join("oci-layout"));
    let err = refused("oci-layout -> a valid copy", &mut check(&layout));
    assert!(err.contains("oci-layout") && err.contains("symbolic link"), "{err}");

    std::fs::copy(elsewhere.join("oci-layout"), layout.join("oci-layout.tmp")).unwrap();
    std::fs::rename(layout.join("oci-layout.tmp"), layout.join("oci-layout")).unwrap();
    symlink(&elsewhere.join("index.json"), &layout.join("index.json"));
    let err = refused("index.json -> a valid copy", &mut check(&layout));
    assert!(err.contains("index.json") && err.contains("symbolic link"), "{err}");
    let err = refused("inspect, index.json -> a valid copy", &mut inspect(&layout));
    assert!(err.contains("index.json") && err.contains("symbolic link"), "{err}");
}

/// The same for the directories of a layout: `blobs` or `blobs/sha256` a
/// symbolic link to a copy elsewhere. O_NOFOLLOW covers the last component of
/// a path only, so these are followed today (the blobs are still
/// digest-checked and must be regular files).
#[test]
fn layout_directories_linked_elsewhere_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("small");
    small_bundle(&layout);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::rename(layout.join("blobs"), &elsewhere).unwrap();
    let mut wrong = Vec::new();
    for (link, target) in [("blobs", elsewhere.clone()), ("blobs/sha256", elsewhere.join("sha256"))] {
        let _ = std::fs::remove_file(layout.join("blobs"));
        if link == "blobs/sha256" {
            std::fs::create_dir(layout.join("blobs")).unwrap();
        }
        symlink(&target, &layout.join(link));
        let out = run_within(&mut check(&layout), LIMIT);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        println!("{link} -> {}: exit {:?}: {}", target.display(), out.status.code(), err.trim());
        if out.status.code() != Some(2) || !err.contains("symbolic link") {
            wrong.push(format!("{link} a symbolic link: exit {:?}, {}", out.status.code(), err.trim()));
        }
    }
    assert!(wrong.is_empty(), "followed:\n{}", wrong.join("\n"));
}

// ================================================================ 3, 4

/// Case 3: `index.json` a named pipe with no writer. The old code's `File::open`
/// blocks until a writer comes: the run hangs, and `run_within` fails it.
/// Also a directory where `index.json` should be.
#[test]
fn index_json_as_a_pipe_or_directory_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("small");
    small_bundle(&layout);
    let index = layout.join("index.json");

    mkfifo(&index);
    for (label, mut cmd) in [("check, index.json a FIFO", check(&layout)), ("inspect", inspect(&layout))] {
        let err = refused(label, &mut cmd);
        assert!(err.contains("index.json") && err.contains("named pipe"), "{label}: {err}");
        assert!(err.contains("regular files only"), "{label}: {err}");
    }

    std::fs::remove_file(&index).unwrap();
    std::fs::create_dir(&index).unwrap();
    let err = refused("index.json a directory", &mut check(&layout));
    assert!(err.contains("index.json") && err.contains("not a regular file"), "{err}");
}

/// A socket where `index.json` should be is refused, naming the path and
/// saying what it is, as for the other kinds of file. (open(2) of a UNIX
/// socket fails with ENXIO before the file type is looked at.)
#[test]
fn index_json_as_a_socket_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("small");
    small_bundle(&layout);
    let index = layout.join("index.json");
    std::fs::remove_file(&index).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(&index).unwrap();
    let err = refused("index.json a socket", &mut check(&layout));
    assert!(err.contains(&index.display().to_string()), "{err}");
    assert!(err.contains("a socket") && err.contains("regular files only"), "{err}");
}

/// Case 4: Blobs that are not regular files: the digest-checked fetch names the
/// path and what it is. The old code opened them with `File::open`: the
/// FIFO hung (the time limit fails the test), /dev/zero was read to the
/// 64 MiB layer limit before the refusal (a different message).
#[test]
fn blobs_that_are_links_to_dev_zero_or_pipes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("small");
    small_bundle(&layout);
    let (root_index, manifest, layer) = pieces(&layout);
    let cases: [(&str, &String, &str); 5] = [
        ("layer -> /dev/zero", &layer, "zero"),
        ("root index -> /dev/zero", &root_index, "zero"),
        ("manifest a FIFO", &manifest, "fifo"),
        ("layer a FIFO", &layer, "fifo"),
        ("layer a device node (1, 5: zero)", &layer, "device"),
    ];
    for (label, digest, kind) in cases {
        let copy = dir.path().join(label.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
        copy_layout(&layout, &copy);
        let blob = blob_path(&copy, digest);
        let expected = match kind {
            "zero" => {
                symlink(Path::new("/dev/zero"), &blob);
                "symbolic link"
            }
            "fifo" => {
                mkfifo(&blob);
                "named pipe"
            }
            _ => {
                std::fs::remove_file(&blob).unwrap();
                let c = CString::new(blob.as_os_str().as_bytes()).unwrap();
                // SAFETY: a NUL-terminated path.
                if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o644, libc::makedev(1, 5)) } != 0 {
                    println!("{label}: skipped (mknod: {})", std::io::Error::last_os_error());
                    continue;
                }
                "a device"
            }
        };
        let err = refused_small(label, &mut check(&copy));
        assert!(err.contains(&blob.display().to_string()), "{label}: names the blob's path: {err}");
        assert!(err.contains(expected) && err.contains("regular files only"), "{label}: {err}");
        let err = refused(&format!("inspect, {label}"), &mut inspect(&copy));
        assert!(err.contains(&blob.display().to_string()) && err.contains(expected), "{label}: {err}");
    }
}

// ================================================================ 5

/// Case 5: An `oci-layout` of 1 MiB (valid JSON, then spaces) is over its 4096
/// bytes; an `index.json` of 5 MiB (valid JSON, then spaces) over its 4 MiB.
/// The old code read `oci-layout` whole and, the JSON being valid, ran the
/// bundle: this test's exit-2 assertion fails on it.
#[test]
fn oversized_oci_layout_and_index_json_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("small");
    small_bundle(&layout);
    let marker = std::fs::read(layout.join("oci-layout")).unwrap();
    let index = std::fs::read(layout.join("index.json")).unwrap();

    let mut big = marker.clone();
    big.resize(MIB as usize, b' ');
    std::fs::write(layout.join("oci-layout"), &big).unwrap();
    let err = refused_small("oci-layout of 1 MiB", &mut check(&layout));
    assert!(
        err.contains("oci-layout") && err.contains(&format!("over the limit of {MAX_MARKER_BYTES} bytes")),
        "{err}"
    );
    // One byte under the limit is fine (valid JSON, then spaces).
    big.truncate(MAX_MARKER_BYTES as usize);
    std::fs::write(layout.join("oci-layout"), &big).unwrap();
    findings("oci-layout of 4096 bytes", &run_within(&mut check(&layout), LIMIT));
    std::fs::write(layout.join("oci-layout"), &marker).unwrap();

    let mut big = index.clone();
    big.resize(5 * MIB as usize, b' ');
    std::fs::write(layout.join("index.json"), &big).unwrap();
    let err = refused_small("index.json of 5 MiB", &mut check(&layout));
    assert!(
        err.contains("index.json") && err.contains(&format!("over the limit of {MAX_MANIFEST_BYTES} bytes")),
        "{err}"
    );
}

// ================================================================ 6

/// Case 6: A bundle path that is a device, a named pipe, or a `.tar` symbolic
/// link to /dev/zero. (The old code took anything not a directory for a
/// tarball and opened it: the FIFO hung.)
#[test]
fn bundle_paths_that_are_devices_or_pipes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("bundle.tar");
    mkfifo(&fifo);
    let link = dir.path().join("zero.tar");
    symlink(Path::new("/dev/zero"), &link);
    // (A link to a device is still a device: zero.tar is refused.)
    for path in [Path::new("/dev/zero"), fifo.as_path(), link.as_path()] {
        for (what, mut cmd) in [("check", check(path)), ("inspect", inspect(path))] {
            let label = format!("{what} --bundle {}", path.display());
            let err = refused_small(&label, &mut cmd);
            assert!(err.contains(&path.display().to_string()), "{label}: {err}");
            assert!(err.contains("neither a layout directory nor a regular (tar) file"), "{label}: {err}");
        }
    }
}

/// The tarball the user names may itself be a symbolic link (files inside a
/// layout may not): a link to a good tarball runs, with the tarball's
/// findings. Signing it in place must sign the tarball the link names, and
/// leave the link a link: today the rewrite (to `link.tar.partial`, renamed
/// onto `link.tar`) replaces the link with a new, signed file and leaves the
/// tarball it named unsigned, while `bundle sign` reports success.
#[test]
fn a_tarball_named_through_a_symbolic_link() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.tar");
    small_bundle(&real);
    let link = dir.path().join("link.tar");
    symlink(&real, &link);
    let direct = findings("real.tar", &run_within(&mut check(&real), LIMIT));
    assert_eq!(findings("link.tar", &run_within(&mut check(&link), LIMIT)), direct);

    let prefix = dir.path().join("team");
    ok(palisade().env("COSIGN_PASSWORD", "pw").args(["bundle", "keygen", "--output-prefix"]).arg(&prefix));
    let said = run_within(
        palisade()
            .env("COSIGN_PASSWORD", "pw")
            .args(["bundle", "sign"])
            .arg(&link)
            .arg("--key")
            .arg(prefix.with_extension("key")),
        LIMIT,
    );
    let verify = run_within(
        palisade().args(["bundle", "verify"]).arg(&real).arg("--key").arg(prefix.with_extension("pub")),
        LIMIT,
    );
    let still_a_link = std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink();
    println!(
        "sign link.tar: exit {:?}; link.tar still a link: {still_a_link}; verify real.tar: exit {:?} {}",
        said.status.code(),
        verify.status.code(),
        String::from_utf8_lossy(&verify.stderr).trim()
    );
    // Either refused, or done to the tarball the link names; not done to a copy.
    if said.status.success() {
        assert!(still_a_link, "signing through link.tar replaced the link with a new file");
        assert!(verify.status.success(), "bundle sign link.tar succeeded, and real.tar is not signed");
    } else {
        assert!(still_a_link);
    }
}

// ================================================================ 7

/// Case 7: Tarballs are streamed: 200 MiB of blobs nothing references (four
/// entries of 50 MiB, each under the 64 MiB blob limit) appended to the
/// default bundle's tarball change neither the findings nor, beyond a little,
/// the peak resident set. The old code read every entry into memory: its peak
/// grew by the 200 MiB, which fails the RSS assertion.
#[test]
fn tarballs_are_streamed_not_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("hardened.tar");
    default_bundle(&original);
    let padded = dir.path().join("padded.tar");
    std::fs::copy(&original, &padded).unwrap();
    append_to_tar(&padded, (1..=4u64).map(|n| (format!("blobs/sha256/{n:064x}"), 50 * MIB, zeros(50 * MIB))).collect());
    let (original_size, padded_size) = (file_size(&original), file_size(&padded));
    println!(
        "tarballs: original {:.1} MiB, padded {:.1} MiB",
        original_size as f64 / MIB as f64,
        padded_size as f64 / MIB as f64
    );
    assert!(padded_size > original_size + 200 * MIB);

    // A first run fills the compiled-component cache; the measured ones read it.
    let warm = run_measured(&mut check(&original), Duration::from_secs(300), KILL_RSS_KIB);
    let expected = findings("original (warm-up)", &warm.out);
    let base = run_measured(&mut check(&original), Duration::from_secs(60), KILL_RSS_KIB);
    let big = run_measured(&mut check(&padded), Duration::from_secs(60), KILL_RSS_KIB);
    for (label, m) in [("original, warm-up", &warm), ("original", &base), ("padded", &big)] {
        println!("check --bundle {label}: {m}");
    }
    assert_eq!(findings("original", &base.out), expected);
    assert_eq!(findings("padded", &big.out), expected, "the unreferenced entries change the findings");
    assert!(
        big.peak_rss_kib < base.peak_rss_kib + (40 << 10),
        "padded: peak RSS {} MiB against {} MiB for the original: the 200 MiB were read",
        big.peak_rss_kib >> 10,
        base.peak_rss_kib >> 10
    );
    assert!(big.peak_rss_kib < 150 << 10, "padded: peak RSS {} MiB", big.peak_rss_kib >> 10);
    let inspected = run_measured(&mut inspect(&padded), LIMIT, KILL_RSS_KIB);
    assert_eq!(inspected.code(), Some(0), "{}", inspected.stderr());
    println!("inspect padded: {inspected}");
    assert!(inspected.peak_rss_kib < 150 << 10);
    std::fs::remove_file(&padded).unwrap();

    // An index that references a blob over the 64 MiB limit: refused, unread.
    let size = MAX_BLOB_BYTES + 1;
    let hex = sha256_of(std::io::repeat(0).take(size));
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{hex}"),
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "1.0.0"}
        }]
    }))
    .unwrap();
    let huge = dir.path().join("huge.tar");
    {
        let mut builder = tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(&huge).unwrap()));
        let marker = br#"{"imageLayoutVersion":"1.0.0"}"#;
        builder.append_data(&mut ustar(marker.len() as u64), "oci-layout", &marker[..]).unwrap();
        builder.append_data(&mut ustar(index.len() as u64), "index.json", &index[..]).unwrap();
        builder.append_data(&mut ustar(size), format!("blobs/sha256/{hex}"), zeros(size)).unwrap();
        builder.into_inner().unwrap().flush().unwrap();
    }
    for (what, mut cmd) in [("check", check(&huge)), ("inspect", inspect(&huge))] {
        let err = refused_small(&format!("{what}, a referenced blob of 64 MiB + 1"), &mut cmd);
        assert!(err.contains(&hex) && err.contains(&format!("over the limit of {MAX_BLOB_BYTES} bytes")), "{err}");
    }
    std::fs::remove_file(&huge).unwrap();

    // An entry over the limit that nothing references is refused as well:
    // the tarball is scanned, and any entry over 64 MiB stops it (before, as
    // now). Documented here so that a change to that is a decision.
    let stray = dir.path().join("stray.tar");
    std::fs::copy(&original, &stray).unwrap();
    let name = format!("blobs/sha256/{:064x}", 99);
    append_to_tar(&stray, vec![(name.clone(), MAX_BLOB_BYTES + 1, zeros(MAX_BLOB_BYTES + 1))]);
    let err = refused_small("an unreferenced entry of 64 MiB + 1", &mut check(&stray));
    assert!(err.contains(&name) && err.contains("over the limit"), "{err}");
}

// ================================================================ 8

/// Case 8: Rewriting a tarball copies its blobs from the original file by offset:
/// `bundle sign` in place (twice), then `bundle save` to a new tarball. Each
/// result verifies, runs with the original's findings, holds every blob of
/// the one before it (an unreferenced one included) with bytes that match
/// its name, and holds no entry twice. The unreferenced blob's size is not a
/// multiple of 512, and its bytes are a pattern, so an offset or padding
/// error shows as a wrong digest. (Only `sign` in place takes the copy by
/// offset; `save` writes what it read and checked. The old code, holding
/// every blob in memory, passes this too: it guards the new path.)
#[test]
fn rewritten_tarballs_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("hardened.tar");
    default_bundle(&original);
    let pattern = || (0..).map(|i: u64| (i % 251) as u8);
    let stray_size = MIB + 123;
    let stray: Vec<u8> = pattern().take(stray_size as usize).collect();
    let stray_hex = sha256_of(&stray[..]);
    let tarball = dir.path().join("signed.tar");
    std::fs::copy(&original, &tarball).unwrap();
    append_to_tar(
        &tarball,
        vec![(format!("blobs/sha256/{stray_hex}"), stray_size, Box::new(std::io::Cursor::new(stray)))],
    );
    let expected = findings("original", &run_within(&mut check(&original), Duration::from_secs(300)));

    // Two keys: signing again with the same key gives the same (deterministic
    // ECDSA) signature and nothing new to write.
    let keys: Vec<(PathBuf, PathBuf)> = ["team", "other"]
        .iter()
        .map(|name| {
            let prefix = dir.path().join(name);
            ok(palisade().env("COSIGN_PASSWORD", "pw").args(["bundle", "keygen", "--output-prefix"]).arg(&prefix));
            (prefix.with_extension("key"), prefix.with_extension("pub"))
        })
        .collect();

    let blobs_of = |path: &Path| -> Vec<String> {
        let entries = tar_entries(path);
        let mut names: Vec<&String> = entries.iter().map(|(n, _, _)| n).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "{}: an entry twice", path.display());
        let mut blobs = Vec::new();
        for (name, _, hash) in &entries {
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                assert_eq!(hex, hash, "{}: {name} holds other bytes", path.display());
                blobs.push(hex.to_string());
            }
        }
        blobs.sort();
        blobs
    };
    let check_runs = |label: &str, path: &Path, public: &Path| {
        let out = run_within(check(path).arg("--verify-key").arg(public), LIMIT);
        assert_eq!(findings(label, &out), expected, "{label}");
        let verified = ok(palisade().args(["bundle", "verify"]).arg(path).arg("--key").arg(public));
        println!("{label}: {verified}");
    };

    let mut before = blobs_of(&tarball);
    assert!(before.contains(&stray_hex));
    for (round, (key, _)) in keys.iter().enumerate() {
        ok(palisade().env("COSIGN_PASSWORD", "pw").args(["bundle", "sign"]).arg(&tarball).arg("--key").arg(key));
        assert!(!tarball.with_extension("tar.partial").exists(), "the partial file is renamed");
        let after = blobs_of(&tarball);
        for hex in &before {
            assert!(after.contains(hex), "sign {round}: {hex} was dropped");
        }
        assert!(after.len() > before.len(), "sign {round}: no new signature blobs");
        for (_, public) in &keys[..=round] {
            check_runs(&format!("signed {round}"), &tarball, public);
        }
        before = after;
    }

    // save to a new tarball: what the bundle references, signatures included.
    let saved = dir.path().join("saved.tar");
    ok(palisade().args(["bundle", "save"]).arg(&tarball).arg(&saved));
    let saved_blobs = blobs_of(&saved);
    assert!(saved_blobs.iter().all(|hex| before.contains(hex)), "save invented blobs");
    for (_, public) in &keys {
        check_runs("saved", &saved, public);
    }
    // ...and signing the saved copy in place once more.
    ok(palisade().env("COSIGN_PASSWORD", "pw").args(["bundle", "sign"]).arg(&saved).arg("--key").arg(&keys[0].0));
    blobs_of(&saved);
    check_runs("saved, signed again", &saved, &keys[1].1);
}

// ================================================================ 9

/// Case 9: A tarball's size limits must hold for what the tar reader reads, not
/// for the header's size field alone: a PAX extended header's `size` record
/// overrides the ustar field (POSIX; the `tar` crate honours it, and its
/// entry reads that many bytes), so an `index.json` whose ustar size says 0
/// and whose PAX size says 5 MiB is 5 MiB of data to the reader. Such entries
/// must be refused as over the limit, not read whole. The last case is a
/// sparse file: 8 GiB of `index.json` that takes no disk, the /dev/zero of
/// tarballs; read whole, it is killed at 1 GiB resident.
#[test]
fn pax_sizes_do_not_get_around_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("small");
    small_bundle(&layout);
    let index = std::fs::read(layout.join("index.json")).unwrap();
    let marker = std::fs::read(layout.join("oci-layout")).unwrap();

    // Each tarball: oci-layout and index.json, one of them announced by a
    // PAX header as `size` bytes (its JSON then spaces, or, sparse, a hole of
    // zeros), then the layout's blobs.
    let write = |path: &Path, padded: &str, size: u64, sparse: bool| {
        let mut builder = tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(path).unwrap()));
        for (name, bytes) in [("oci-layout", &marker), ("index.json", &index)] {
            if name != padded {
                builder.append_data(&mut ustar(bytes.len() as u64), name, &bytes[..]).unwrap();
                continue;
            }
            let record = pax_record("size", &size.to_string());
            let mut pax = ustar(record.len() as u64);
            pax.set_entry_type(tar::EntryType::XHeader);
            builder.append_data(&mut pax, format!("PaxHeaders/{name}"), &record[..]).unwrap();
            if sparse {
                builder.append_data(&mut ustar(0), name, std::io::empty()).unwrap();
                let file = builder.get_mut();
                file.seek(SeekFrom::Current(size.div_ceil(512) as i64 * 512)).unwrap();
            } else {
                let data = std::io::Cursor::new(bytes.clone()).chain(std::io::repeat(b' ')).take(size);
                builder.append_data(&mut ustar(0), name, data).unwrap();
            }
        }
        for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let name = format!("blobs/sha256/{}", entry.file_name().to_string_lossy());
            builder.append_data(&mut ustar(bytes.len() as u64), name, &bytes[..]).unwrap();
        }
        builder.into_inner().unwrap().flush().unwrap();
    };

    // The same tarball with a PAX size that tells the truth runs (so these
    // tarballs are well formed, and read as intended).
    let honest = dir.path().join("honest.tar");
    write(&honest, "index.json", index.len() as u64, false);
    findings("PAX size = the index's size", &run_within(&mut check(&honest), LIMIT));

    let cases = [
        ("oci-layout", MIB, MAX_MARKER_BYTES, false),
        ("index.json", 5 * MIB, MAX_MANIFEST_BYTES, false),
        ("index.json", 8 << 30, MAX_MANIFEST_BYTES, true),
    ];
    // All cases run (and print their figures) before the verdict.
    let mut wrong = Vec::new();
    for (name, size, limit, sparse) in cases {
        let path = dir.path().join(format!("pax-{name}-{size}.tar"));
        write(&path, name, size, sparse);
        // The premise: to the tar crate the entry is `size` bytes (what it
        // reads), while its header's size field says 0.
        let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
        let entry = archive.entries().unwrap().map(Result::unwrap).find(|e| e.path().unwrap() == Path::new(name));
        let entry = entry.expect("the padded entry");
        assert_eq!((entry.header().size().unwrap(), entry.size()), (0, size));
        drop(entry);
        let label = format!(
            "{name} of {} MiB{} by its PAX header, 0 by its ustar header",
            size / MIB,
            if sparse { " (sparse)" } else { "" }
        );
        let measured = try_run_measured(&mut check(&path), LIMIT, KILL_RSS_KIB);
        std::fs::remove_file(&path).unwrap();
        let m = match measured {
            Ok(m) => m,
            Err(killed) => {
                println!("{label}: {killed}");
                wrong.push(format!("{label}: read whole, {killed}"));
                continue;
            }
        };
        let err = m.stderr();
        println!("{label}: {m}: {}", err.trim());
        if m.code() != Some(2) || !err.contains(&format!("over the limit of {limit} bytes")) {
            wrong.push(format!("{label}: not refused as over the limit of {limit} bytes ({m})"));
        } else if m.sampled_hwm_kib >= 50 << 10 {
            wrong.push(format!("{label}: refused after reading it ({m})"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// One PAX record: "<length> <key>=<value>\n", the length counting itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let rest = format!(" {key}={value}\n");
    let mut len = rest.len() + 1;
    while format!("{len}{rest}").len() != len {
        len += 1;
    }
    format!("{len}{rest}").into_bytes()
}

// ================================================================ 10

/// Case 10: a warm start keeps no component in memory. With every compiled
/// form in the cache, `check --bundle` of the default tarball still reads
/// each layer whole and hashes it, a piece at a time, but holds none of its
/// components (17 MiB of them): its peak resident set is within a few MiB of
/// `check` with the same built-in rules, whose compiled forms the cache holds
/// too. (The code before kept every component until all were loaded: 17 MiB
/// over.) It gives their findings; a flipped byte in a layer is refused as a
/// cold start refuses it; and a component whose compiled form turns out to
/// be damaged is read from the tarball again, checked, and compiled anew.
#[test]
fn warm_starts_hash_every_layer_and_keep_no_component() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("hardened.tar");
    default_bundle(&tar);
    let builtin = || {
        let mut cmd = palisade();
        cmd.current_dir(root()).args(["check", "--format", "json"]).arg(root().join("examples"));
        cmd
    };
    // Both warmed up: their compiled forms are the same files.
    let warm_up = run_measured(&mut check(&tar), Duration::from_secs(600), KILL_RSS_KIB);
    let expected = findings("bundle, warm-up", &warm_up.out);
    assert_eq!(findings("built-in, warm-up", &run_measured(&mut builtin(), LIMIT, KILL_RSS_KIB).out), expected);
    let bundled = run_measured(&mut check(&tar), LIMIT, KILL_RSS_KIB);
    let plain = run_measured(&mut builtin(), LIMIT, KILL_RSS_KIB);
    println!("check --bundle (warm): {bundled}\ncheck (built-in, warm): {plain}");
    assert_eq!(findings("bundle", &bundled.out), expected);
    assert!(
        bundled.peak_rss_kib < plain.peak_rss_kib + (8 << 10),
        "a warm start from the bundle peaks at {} MiB, the built-in rules at {} MiB: the components were kept",
        bundled.peak_rss_kib >> 10,
        plain.peak_rss_kib >> 10
    );

    // The layers of the tarball, and where each one's bytes start in it.
    let cache = std::fs::read_dir(root().join("target").join("test-cache"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("wasmtime-")))
        .expect("the compiled cache");
    let mut layers = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let Some(hex) = name.strip_prefix("blobs/sha256/") else { continue };
        // A component layer: the cache holds its compiled form, under its digest.
        if cache.join(format!("{hex}.cwasm")).is_file() {
            layers.push((hex.to_string(), entry.raw_file_position(), entry.size()));
        }
    }
    assert!(layers.len() >= 40, "{} component layers", layers.len());
    layers.sort_by_key(|&(_, _, size)| size);

    // A flipped byte in a layer (the largest): refused by its digest.
    let (hex, offset, size) = layers.last().unwrap().clone();
    let flipped = dir.path().join("flipped.tar");
    std::fs::copy(&tar, &flipped).unwrap();
    {
        let mut file = std::fs::OpenOptions::new().read(true).write(true).open(&flipped).unwrap();
        let at = offset + size / 3;
        let mut byte = [0u8];
        file.seek(SeekFrom::Start(at)).unwrap();
        file.read_exact(&mut byte).unwrap();
        file.seek(SeekFrom::Start(at)).unwrap();
        file.write_all(&[byte[0] ^ 0x01]).unwrap();
    }
    let err = refused("a flipped byte in a layer, warm", &mut check(&flipped));
    assert!(err.contains("does not match its digest") && err.contains(&hex), "{err}");

    // A damaged compiled form (of the smallest layer), in a copy of the cache:
    // the component is read again and compiled, and its compiled form written anew.
    let (hex, _, _) = layers.first().unwrap().clone();
    let private = dir.path().join("cache");
    let copy = private.join(cache.file_name().unwrap());
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&cache).unwrap().flatten() {
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let compiled = copy.join(format!("{hex}.cwasm"));
    let good = std::fs::read(&compiled).unwrap();
    std::fs::write(&compiled, &good[..good.len() / 2]).unwrap();
    let mut damaged = check(&tar);
    damaged.env("PALISADE_CACHE_DIR", &private);
    let again = run_measured(&mut damaged, Duration::from_secs(600), KILL_RSS_KIB);
    println!("check --bundle, one compiled form damaged: {again}");
    assert_eq!(findings("one compiled form damaged", &again.out), expected);
    let rewritten = std::fs::read(&compiled).unwrap();
    assert!(rewritten.len() > good.len() / 2, "the compiled form was not written anew");
}
