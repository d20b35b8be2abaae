#[trio::test(paused)]
async fn t() {}

fn main() {}
