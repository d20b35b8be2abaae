#[trio::test(autojump(0.5))]
async fn t() {}

fn main() {}
