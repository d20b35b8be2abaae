#[trio::wchan(waiting)]
async fn f() {}

fn main() {}
