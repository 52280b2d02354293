//! `sqlx::migrate!` embeds the ticket and payment services' migrations in the
//! invariants test at compile time; without this, a new migration would not
//! rebuild the test and it would check a stale schema.

fn main() {
    println!("cargo:rerun-if-changed=../../runtime-services/ticket/migrations");
    println!("cargo:rerun-if-changed=../../runtime-services/payment/migrations");
}
