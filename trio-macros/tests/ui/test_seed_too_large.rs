#[trio::test(seed = 18446744073709551616)]
async fn t() {}

fn main() {}
