#[trio::test(seed = 1, seed = 2)]
async fn t() {}

fn main() {}
