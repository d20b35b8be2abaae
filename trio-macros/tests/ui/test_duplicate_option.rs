#[trio::test(autojump, autojump = 0.5)]
async fn t() {}

fn main() {}
