#[trio::checkpoint]
async fn f() -> u32 {
    1
}

fn main() {}
