#[trio::checkpoint]
fn f() -> trio::Result<()> {
    Ok(())
}

fn main() {}
