#[derive(Debug)]
struct AppError;

type Fallible<T> = Result<T, AppError>;

#[trio::checkpoint]
async fn f() -> Fallible<u8> {
    Ok(1)
}

fn main() {}
