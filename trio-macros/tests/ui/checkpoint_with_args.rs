#[trio::checkpoint(fast)]
async fn f() -> trio::Result<()> {
    Ok(())
}

fn main() {}
