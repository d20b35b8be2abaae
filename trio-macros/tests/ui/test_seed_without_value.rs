#[trio::test(seed)]
async fn t() {}

fn main() {}
