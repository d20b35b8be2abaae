#[trio::test(autojump = f64::NAN)]
async fn t() {}

fn main() {}
