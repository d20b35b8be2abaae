#[trio::main]
async fn main<T>() {}
