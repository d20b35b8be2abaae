#[trio::wchan("a", "b")]
async fn f() {}

fn main() {}
