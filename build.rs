//! Rebuilds when a migration is added or changed: `embed_migrations!`
//! (src/db/mod.rs) compiles the `migrations/` directory into the binary, and
//! cargo does not watch a directory a macro reads.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
