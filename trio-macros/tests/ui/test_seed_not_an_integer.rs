#[trio::test(seed = 1.5)]
async fn t() {}

fn main() {}
