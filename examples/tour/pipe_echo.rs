//! A parent and a child talk over a two-way `Pipe`: the child echoes each message back in
//! capitals until told to stop (tutorials 003 and 004, `multiprocessing.Pipe`).

use multiproc::prelude::*;

#[process_task]
fn echo(mut conn: Connection<Option<String>>) {
    while let Ok(Some(text)) = conn.recv() {
        conn.send(&Some(text.to_uppercase())).expect("send");
    }
}

pub fn run() -> multiproc::Result<()> {
    let (mut parent_end, child_end) = Pipe::<Option<String>>::duplex()?;
    let child = Process::new(task!(echo, child_end)).start()?;
    for text in ["hello", "from", "the parent"] {
        parent_end.send(&Some(text.to_string()))?;
        println!("sent {text:?}, got back {:?}", parent_end.recv()?);
    }
    // The child also holds a copy of the parent's end (fork copies every descriptor), so it
    // would never see the pipe close: tell it to stop instead.
    parent_end.send(&None)?;
    child.join()?;
    Ok(())
}
