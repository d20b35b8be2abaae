#[trio::test(clock)]
async fn t() {}

fn main() {}
