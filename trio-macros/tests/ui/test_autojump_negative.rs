#[trio::test(autojump = -1.0)]
async fn t() {}

fn main() {}
