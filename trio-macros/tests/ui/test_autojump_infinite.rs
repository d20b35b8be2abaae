#[trio::test(autojump = 1e999)]
async fn t() {}

fn main() {}
