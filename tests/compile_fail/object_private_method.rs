use multiproc::managers::{manager_object, Manager};

pub struct Secret(u64);

#[manager_object]
impl Secret {
    pub fn new() -> Self {
        Secret(7)
    }

    fn reveal(&self) -> u64 {
        self.0
    }
}

fn main() {
    let manager = Manager::start().unwrap();
    let secret = SecretProxy::new(&manager).unwrap();
    secret.reveal();
}
