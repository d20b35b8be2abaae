#[trio::checkpoint]
async fn f() {}

fn main() {}
