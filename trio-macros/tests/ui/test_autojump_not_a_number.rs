#[trio::test(autojump = "soon")]
async fn t() {}

fn main() {}
