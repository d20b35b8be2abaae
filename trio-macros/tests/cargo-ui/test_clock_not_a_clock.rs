#[trio::test(clock = std::time::Instant::now())]
async fn t() {}
