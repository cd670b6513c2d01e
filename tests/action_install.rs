//! The Action's install step (`scripts/action-install.sh`) against a local fake release server
//! (wiremock): a good release binary is used, a checksum mismatch is refused, a missing release
//! and a branch ref fall back to building (a tiny crate standing in for the Action's source).

use std::path::Path;
use std::process::{Command, Output};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const VERSION: &str = "1.2.3";
const ASSET: &str = "mcp-perfcheck-v1.2.3-x86_64-unknown-linux-musl.tar.gz";
const RELEASE: &str = "/mcp-perfcheck/mcp-perfcheck/releases/download/v1.2.3";

/// The Action's checkout: a crate of the given version whose binary says it was built.
fn action_source(dir: &Path) {
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"mcp-perfcheck\"\nversion = \"{VERSION}\"\nedition = \"2021\"\n\n[[bin]]\nname = \"mcp-perfcheck\"\npath = \"main.rs\"\n"),
    )
    .unwrap();
    std::fs::write(dir.join("main.rs"), "fn main() { println!(\"built from source\"); }\n").unwrap();
    std::fs::write(
        dir.join("Cargo.lock"),
        format!("version = 4\n\n[[package]]\nname = \"mcp-perfcheck\"\nversion = \"{VERSION}\"\n"),
    )
    .unwrap();
}

/// A release tarball holding an `mcp-perfcheck` that says it came from the release.
fn tarball(dir: &Path) -> Vec<u8> {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::write(stage.join("mcp-perfcheck"), "#!/bin/sh\necho from the release\n").unwrap();
    let ok = Command::new("chmod").arg("+x").arg(stage.join("mcp-perfcheck")).status().unwrap().success();
    assert!(ok);
    let out = dir.join(ASSET);
    let ok = Command::new("tar").arg("-czf").arg(&out).arg("-C").arg(&stage).arg("mcp-perfcheck").status().unwrap();
    assert!(ok.success());
    std::fs::read(out).unwrap()
}

fn sha256(bytes: &[u8], dir: &Path) -> String {
    let f = dir.join("hashed");
    std::fs::write(&f, bytes).unwrap();
    let out = Command::new("sha256sum").arg(&f).output().expect("sha256sum (coreutils) is installed");
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

struct Run {
    out: Output,
    path_file: String,
    outputs: String,
}

fn install(action: &Path, temp: &Path, mode: &str, reference: &str, releases: &str) -> Run {
    let (path_file, output_file) = (temp.join("path"), temp.join("output"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/action-install.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(mode)
        .env("ACTION_PATH", action)
        .env("ACTION_REF", reference)
        .env("ACTION_REPO", "mcp-perfcheck/mcp-perfcheck")
        .env("RELEASES_URL", releases)
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("RUNNER_TEMP", temp)
        .env("GITHUB_PATH", &path_file)
        .env("GITHUB_OUTPUT", &output_file)
        .env("TOOLCHAIN", "")
        .env("CARGO_TARGET_DIR", action.join("target"))
        .output()
        .unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Run { out, path_file: read(&path_file), outputs: read(&output_file) }
}

fn stderr(r: &Run) -> String {
    String::from_utf8_lossy(&r.out.stderr).into_owned()
}

async fn serve(server: &MockServer, asset: Vec<u8>, sums: String) {
    Mock::given(method("GET"))
        .and(path(format!("{RELEASE}/{ASSET}")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(asset))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{RELEASE}/SHA256SUMS")))
        .respond_with(ResponseTemplate::new(200).set_body_string(sums))
        .mount(server)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_with_a_matching_checksum_is_used() {
    let (action, temp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    action_source(action.path());
    let server = MockServer::start().await;
    let asset = tarball(temp.path());
    let sums = format!("{}  other-file.tar.gz\n{}  {ASSET}\n", "0".repeat(64), sha256(&asset, temp.path()));
    serve(&server, asset, sums).await;
    let r = install(action.path(), temp.path(), "fetch", "v1", &server.uri());
    assert!(r.out.status.success(), "{}", stderr(&r));
    assert!(r.outputs.contains("installed=release\n") && r.outputs.contains("version=1.2.3\n"), "{}", r.outputs);
    assert!(!r.outputs.contains("build=true"));
    let bin = Path::new(r.path_file.trim()).join("mcp-perfcheck");
    let ran = Command::new(&bin).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "from the release\n");
    assert!(stderr(&r).contains("SHA-256 verified"), "{}", stderr(&r));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checksum_mismatch_is_refused_and_not_replaced_by_a_build() {
    let (action, temp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    action_source(action.path());
    let server = MockServer::start().await;
    let asset = tarball(temp.path());
    serve(&server, asset, format!("{}  {ASSET}\n", "ab".repeat(32))).await;
    let r = install(action.path(), temp.path(), "fetch", "v1.2.3", &server.uri());
    assert_eq!(r.out.status.code(), Some(1), "{}", stderr(&r));
    let err = stderr(&r);
    assert!(err.contains(&format!("refusing {ASSET}: its SHA-256 is")) && err.contains(&"ab".repeat(32)), "{err}");
    assert!(r.path_file.is_empty() && !r.outputs.contains("build=true"), "nothing installed: {}", r.outputs);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_release_or_a_branch_ref_builds_from_source() {
    let (action, temp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    action_source(action.path());
    let server = MockServer::start().await; // serves nothing: every download is a 404
    let r = install(action.path(), temp.path(), "fetch", "v1", &server.uri());
    assert!(r.out.status.success(), "{}", stderr(&r));
    assert!(stderr(&r).contains("no release v1.2.3"), "{}", stderr(&r));
    assert!(
        r.outputs.contains("build=true\n") && r.outputs.contains("cache-key=mcp-perfcheck-Linux-X64-rust-"),
        "{}",
        r.outputs
    );
    assert!(r.outputs.contains("cache-prefix=mcp-perfcheck-Linux-X64-rust-\n"), "{}", r.outputs);

    let branch = install(action.path(), temp.path(), "fetch", "main", &server.uri());
    assert!(stderr(&branch).contains("ref 'main' is not a version tag"), "{}", stderr(&branch));
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "SHA256SUMS of v1.2.3 once; the branch ref asked for nothing"
    );

    let built = install(action.path(), temp.path(), "build", "main", &server.uri());
    assert!(built.out.status.success(), "{}", stderr(&built));
    assert!(built.outputs.contains("installed=build\n"), "{}", built.outputs);
    let bin = Path::new(built.path_file.lines().last().unwrap()).join("mcp-perfcheck");
    assert_eq!(String::from_utf8_lossy(&Command::new(bin).output().unwrap().stdout), "built from source\n");
}
