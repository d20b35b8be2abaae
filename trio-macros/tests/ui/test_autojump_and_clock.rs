#[trio::test(autojump, clock = trio_test::MockClock::new())]
async fn t() {}

fn main() {}
