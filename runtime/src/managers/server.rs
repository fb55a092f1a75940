//! The manager's server: a child process that holds the object table and answers requests, one
//! at a time, in a single-threaded `poll` loop, so that every operation is atomic without a lock.
//!
//! It is an internal task, `multiproc::managers::serve`, started like a pool worker through the
//! context's start method: a forked server runs it in place, a spawned one (or one forked by the
//! fork server) receives its token as the task's arguments. It listens on an abstract Unix
//! socket named after its own pid and the token, so nothing is left on disk even if it is
//! killed, and serves only peers of its own user (`SO_PEERCRED`). It is daemonic: it dies with
//! the process that started it.

use super::protocol::{address, Op, Reply, Request, MANAGER, MAX_REQUEST};
use super::table::Table;
use super::waiting::Caller;
use super::ServerError;
use crate::sys;
use crate::sys::backoff::{Backoff, Patience};
use crate::task::registry::TaskEntry;
use crate::task::{Target, Task};
use crate::wire::{self, HEADER_LEN};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

/// Bytes read from a client at a time, unless a large request wants more.
const CHUNK: usize = 64 * 1024;

/// The most read from a client at a time.
const MAX_READ: usize = 16 << 20;

/// The server's body and its one argument, the random token that names its socket.
#[derive(Serialize, Deserialize)]
pub(crate) struct ServerTask {
    pub(crate) token: [u64; 2],
}

impl Task for ServerTask {
    const NAME: &'static str = "multiproc::managers::serve";
    type Args = ServerTask;
    type Output = ();

    fn call(task: ServerTask) {
        serve(task.token)
    }
}

inventory::submit! { TaskEntry::of::<ServerTask>() }

impl Target for ServerTask {
    type Output = ();

    fn task_name(&self) -> Option<&'static str> {
        Some(Self::NAME)
    }

    fn invoke(self) {
        Self::call(self)
    }

    fn encode_args(&self) -> Option<Result<Vec<u8>, crate::wire::CodecError>> {
        Some(wire::encode(self))
    }
}

/// Listens, then serves until asked to shut down; exits 1 if it cannot listen.
fn serve(token: [u64; 2]) {
    let listener = match listen(token) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("multiproc manager: cannot listen: {e}");
            crate::exit(1);
        }
    };
    let mut server = Server {
        listener,
        clients: Vec::new(),
        table: Table::default(),
        stopping: false,
        last_client: 0,
    };
    server.run();
}

/// This process's socket, non-blocking.
fn listen(token: [u64; 2]) -> io::Result<OwnedFd> {
    let listener = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    socket::bind(
        listener.as_raw_fd(),
        &address(std::process::id() as i32, token)?,
    )?;
    socket::listen(&listener, socket::Backlog::new(128)?)?;
    Ok(listener)
}

struct Server {
    listener: OwnedFd,
    clients: Vec<Client>,
    table: Table,
    /// A shutdown was asked for: answer it, then return.
    stopping: bool,
    /// The last connection number handed out.
    last_client: u64,
}

impl Server {
    fn run(&mut self) {
        while !self.stopping {
            let mut fds: Vec<libc::pollfd> = std::iter::once(&self.listener)
                .map(|fd| (fd, libc::POLLIN))
                .chain(self.clients.iter().map(|c| (&c.fd, c.interest())))
                .map(|(fd, events)| libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events,
                    revents: 0,
                })
                .collect();
            if wait_for_work(&mut fds, self.table.next_deadline()).is_err() {
                return;
            }
            self.table.expire(Instant::now());
            if fds[0].revents != 0 {
                self.accept_all();
            }
            for (client, fd) in self.clients.iter_mut().zip(&fds[1..]) {
                if fd.revents != 0 {
                    client.serve(&mut self.table, &mut self.stopping);
                }
            }
            for gone in self.clients.iter().filter(|c| !c.open) {
                self.table.forget(gone.caller.id);
            }
            self.clients.retain(|c| c.open);
            if self.stopping {
                self.table.refuse_all();
            }
            self.deliver();
        }
        // The shutdown's answer goes out before the process ends; the others see the end.
        for client in &mut self.clients {
            client.flush();
        }
    }

    /// Sends the answers of parked requests that became ready.
    fn deliver(&mut self) {
        for (id, reply) in std::mem::take(&mut self.table.outbox) {
            if let Some(client) = self.clients.iter_mut().find(|c| c.caller.id == id) {
                push_reply(&reply, &mut client.output);
                client.flush();
            }
        }
    }

    /// Takes every waiting connection from a peer of this user; drops the others.
    fn accept_all(&mut self) {
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        while let Ok(raw) = socket::accept4(self.listener.as_raw_fd(), flags) {
            // SAFETY: accept4 just returned this descriptor; nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let Ok(peer) = socket::getsockopt(&fd, socket::sockopt::PeerCredentials) else {
                continue;
            };
            // SAFETY: geteuid has no preconditions.
            if peer.uid() == unsafe { libc::geteuid() } {
                self.last_client += 1;
                let caller = Caller {
                    id: self.last_client,
                    pid: peer.pid(),
                };
                self.clients.push(Client::new(fd, caller));
            }
        }
    }
}

/// Waits until one of `fds` is ready. The next request is usually a client's turn away, so the
/// server watches for it first, giving the CPU up between looks (a client may need this very
/// CPU), before it sleeps in `poll`: a sleep and a wake-up cost more than the looks.
///
/// `deadline` is the earliest deadline of a parked request: the wait ends there.
fn wait_for_work(fds: &mut [libc::pollfd], deadline: Option<Instant>) -> io::Result<()> {
    let mut backoff = Backoff::new(Patience::POOL);
    loop {
        sys::poll_fds(fds, Some(Instant::now()))?;
        if fds.iter().any(|fd| fd.revents != 0) {
            return Ok(());
        }
        if !backoff.snooze() || deadline.is_some_and(|d| Instant::now() >= d) {
            return sys::poll_fds(fds, deadline);
        }
    }
}

/// One client's connection: requests read but not yet answered, and answers not yet sent.
struct Client {
    fd: OwnedFd,
    caller: Caller,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Set when the client hung up, or sent what cannot be answered; it is dropped.
    open: bool,
}

impl Client {
    fn new(fd: OwnedFd, caller: Caller) -> Self {
        Client {
            fd,
            caller,
            input: Vec::new(),
            output: Vec::new(),
            open: true,
        }
    }

    /// What to wait for: room to send while answers are pending (and nothing read meanwhile,
    /// so that a client that does not read its answers cannot make them pile up), else requests.
    fn interest(&self) -> i16 {
        if self.output.is_empty() {
            libc::POLLIN
        } else {
            libc::POLLOUT
        }
    }

    /// Reads what arrived, answers every whole request, and sends the answers.
    fn serve(&mut self, table: &mut Table, stopping: &mut bool) {
        if self.output.is_empty() {
            self.read(table, stopping);
        }
        self.flush();
    }

    fn read(&mut self, table: &mut Table, stopping: &mut bool) {
        let have = self.input.len();
        let want = wire::frame_len(&self.input).map_or(CHUNK, |total| total.saturating_sub(have));
        // The buffer grows as a large request arrives, not as its header announces.
        self.input.resize(have + want.clamp(CHUNK, MAX_READ), 0);
        let read = sys::read_some(self.fd.as_fd(), &mut self.input[have..]);
        self.input
            .truncate(have + read.as_ref().map_or(0, |n| n.unwrap_or(0)));
        match read {
            Ok(Some(0)) | Err(_) => self.open = false,
            Ok(_) => {
                let answered = answer_requests(self.caller, &self.input, table, &mut self.output);
                self.input.drain(..answered.consumed);
                *stopping |= answered.stop;
                self.open &= !answered.hang_up;
            }
        }
    }

    /// Sends as much of the pending answers as the socket takes now.
    fn flush(&mut self) {
        let mut sent = 0;
        while sent < self.output.len() {
            match sys::send_vectored(self.fd.as_fd(), &[IoSlice::new(&self.output[sent..])]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.open = false;
                    break;
                }
            }
        }
        self.output.drain(..sent);
    }
}

/// What [`answer_requests`] did.
pub(crate) struct Answered {
    /// Bytes of the input taken: every whole request.
    pub(crate) consumed: usize,
    /// A shutdown was asked for.
    pub(crate) stop: bool,
    /// The input cannot be trusted any further (a header announcing too much): after the answers
    /// go out, the connection is to be closed.
    pub(crate) hang_up: bool,
}

/// Answers every whole request at the front of `input`, appending one reply frame per request
/// to `output`: the request decoder, which any peer of this user can feed anything. A request
/// that does not decode gets [`ServerError::Malformed`], and the stream goes on at the next
/// frame.
pub(crate) fn answer_requests(
    caller: Caller,
    input: &[u8],
    table: &mut Table,
    output: &mut Vec<u8>,
) -> Answered {
    let mut answered = Answered {
        consumed: 0,
        stop: false,
        hang_up: false,
    };
    while let Some(header) = input.get(answered.consumed..answered.consumed + HEADER_LEN) {
        let len = u64::from_le_bytes(header.try_into().unwrap_or_default());
        if len > MAX_REQUEST {
            let max = MAX_REQUEST;
            push_reply(&Err(ServerError::TooLarge { len, max }), output);
            answered.hang_up = true;
            break;
        }
        let Some(payload) = wire::complete_frame(&input[answered.consumed..]) else {
            break;
        };
        answered.consumed += HEADER_LEN + payload.len();
        let answer = match wire::decode::<Request>(payload) {
            Ok(request) => {
                answered.stop |= request.obj == MANAGER && matches!(request.op, Op::Shutdown);
                table.apply(caller, request)
            }
            Err(e) => Some(Err(ServerError::Malformed {
                reason: e.to_string(),
            })),
        };
        if let Some(answer) = answer {
            push_reply(&answer, output);
        }
        if answered.stop {
            break;
        }
    }
    answered
}

/// Appends `reply` to a connection's pending output, as one frame.
fn push_reply(reply: &Reply, output: &mut Vec<u8>) {
    // A reply is an encoded result or a `ServerError`: it always encodes.
    if let Ok(frame) = wire::encode_frame(reply) {
        output.extend_from_slice(&frame);
    }
}

#[cfg(test)]
mod tests {
    use super::super::protocol::NumberKind;
    use super::*;

    const CALLER: Caller = Caller { id: 1, pid: 1 };

    fn request(obj: u64, op: Op) -> Vec<u8> {
        wire::encode_frame(&Request { obj, op }).unwrap()
    }

    /// The reply frames in `output`, decoded.
    fn replies(mut output: &[u8]) -> Vec<Reply> {
        let mut all = Vec::new();
        while let Some(payload) = wire::complete_frame(output) {
            all.push(wire::decode::<Reply>(payload).unwrap());
            output = &output[HEADER_LEN + payload.len()..];
        }
        assert!(output.is_empty(), "only whole frames");
        all
    }

    #[test]
    fn each_whole_request_is_answered_in_order_and_garbage_gets_an_error() {
        let mut stream = request(MANAGER, Op::NewDict);
        stream.extend(wire::encode_frame(&[0xffu8; 5][..]).unwrap());
        let (key, value) = (wire::encode(&1u8).unwrap(), wire::encode(&2u8).unwrap());
        stream.extend(request(1, Op::DictInsert { key, value }));
        let partial = request(1, Op::Len);
        stream.extend(&partial[..partial.len() - 1]);
        let (mut table, mut output) = (Table::default(), Vec::new());
        let answered = answer_requests(CALLER, &stream, &mut table, &mut output);
        assert_eq!(answered.consumed, stream.len() - (partial.len() - 1));
        assert!(!answered.stop && !answered.hang_up);
        let replies = replies(&output);
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[0], Ok(wire::encode(&1u64).unwrap()));
        assert!(matches!(replies[1], Err(ServerError::Malformed { .. })));
        assert_eq!(replies[2], Ok(wire::encode(&None::<Vec<u8>>).unwrap()));
    }

    #[test]
    fn a_header_past_the_maximum_is_refused_and_ends_the_stream() {
        let mut stream = (MAX_REQUEST + 1).to_le_bytes().to_vec();
        stream.extend(request(MANAGER, Op::NewList));
        let (mut table, mut output) = (Table::default(), Vec::new());
        let answered = answer_requests(CALLER, &stream, &mut table, &mut output);
        assert!(answered.hang_up);
        let replies = replies(&output);
        assert_eq!(replies.len(), 1, "nothing after it is read");
        assert!(matches!(replies[0], Err(ServerError::TooLarge { .. })));
    }

    #[test]
    fn a_shutdown_is_answered_and_stops_the_reading() {
        let mut stream = request(MANAGER, Op::Shutdown);
        stream.extend(request(MANAGER, Op::NewList));
        let (mut table, mut output) = (Table::default(), Vec::new());
        let answered = answer_requests(CALLER, &stream, &mut table, &mut output);
        assert!(answered.stop);
        assert_eq!(replies(&output), [Ok(wire::encode(&()).unwrap())]);
    }

    /// What the fuzz target does, with a few thousand pseudo-random streams: frames of random
    /// bytes, and requests whose bytes are mutated, against one table; nothing may panic.
    #[test]
    fn random_and_mutated_streams_get_answers_and_never_a_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut table = Table::default();
        let mut output = Vec::new();
        let valid = [
            request(MANAGER, Op::NewDict),
            request(MANAGER, Op::NewBarrier { parties: 2 }),
            request(
                1,
                Op::DictFetchAdd {
                    key: vec![1],
                    kind: NumberKind::U8,
                    delta: vec![255],
                    subtract: true,
                },
            ),
            request(
                2,
                Op::BarrierWait {
                    timeout_micros: Some(u64::MAX),
                },
            ),
        ];
        for round in 0..4000u64 {
            let mut stream = valid[(round % 4) as usize].clone();
            let at = HEADER_LEN + (next() as usize) % (stream.len() - HEADER_LEN);
            stream[at] = next() as u8;
            let len = (next() % 24) as usize;
            let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            stream.extend((noise.len() as u64).to_le_bytes());
            stream.extend(noise);
            let answered = answer_requests(CALLER, &stream, &mut table, &mut output);
            assert!(answered.consumed <= stream.len());
        }
        assert!(!output.is_empty());
    }

    #[test]
    fn an_operation_of_another_kind_or_object_is_refused() {
        let mut stream = request(MANAGER, Op::NewList);
        stream.extend(request(1, Op::DictKeys));
        stream.extend(request(7, Op::Len));
        stream.extend(request(MANAGER, Op::Len));
        let (mut table, mut output) = (Table::default(), Vec::new());
        answer_requests(CALLER, &stream, &mut table, &mut output);
        let replies = replies(&output);
        assert!(matches!(&replies[1], Err(ServerError::WrongKind { kind, .. }) if kind == "list"));
        assert_eq!(replies[2], Err(ServerError::NoSuchObject { obj: 7 }));
        assert!(
            matches!(&replies[3], Err(ServerError::WrongKind { kind, .. }) if kind == "manager")
        );
    }
}
