#[trio::checkpoint]
async fn f() -> Result<(), std::fmt::Error> {
    Ok(())
}

fn main() {}
