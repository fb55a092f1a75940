//! The manager's server: a child process that holds the object table and answers requests, one
//! at a time, in a single-threaded `poll` loop, so that every operation is atomic without a lock.
//!
//! It is an internal task, `multiproc::managers::serve`, started like a pool worker through the
//! context's start method: a forked server runs it in place, a spawned one (or one forked by the
//! fork server) receives its token as the task's arguments. It listens on an abstract Unix
//! socket named after its own pid and the token, so nothing is left on disk even if it is
//! killed, and serves only peers of its own user (`SO_PEERCRED`). It is daemonic: it dies with
//! the process that started it. A manager built to listen on TCP also accepts TCP peers, each
//! served once it passes the authkey challenge (`auth.rs`) within its time.

use super::auth::{
    AuthKey, ServerHandshake, ServerId, Step, HANDSHAKE_PATIENCE, MAX_HANDSHAKE_FRAME,
};
use super::client::Remote;
use super::protocol::{address, Op, Reply, Request, MANAGER, MAX_REQUEST};
use super::remote::{ADDRESS_OBJ, REGISTRY_OBJ};
use super::table::Table;
use super::waiting::Caller;
use super::ServerError;
use crate::sys;
use crate::sys::backoff::{Backoff, Patience};
use crate::task::Task;
use crate::wire::{self, HEADER_LEN};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};
use std::io::{self, IoSlice};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

/// Bytes read from a client at a time, unless a large request wants more.
const CHUNK: usize = 64 * 1024;

/// The most read from a client at a time.
const MAX_READ: usize = 16 << 20;

/// The server's body and its arguments: the random token that names its socket, and the TCP
/// address and authkey it also listens with, if any.
#[derive(Serialize, Deserialize)]
pub(crate) struct ServerTask {
    pub(crate) token: [u64; 2],
    pub(crate) tcp: Option<Remote>,
}

impl Task for ServerTask {
    const NAME: &'static str = "multiproc::managers::serve";
    type Args = ServerTask;
    type Output = ();

    fn call(task: ServerTask) {
        serve(task.token, task.tcp)
    }
}

crate::task::internal_task!(ServerTask);

/// Listens, then serves until asked to shut down; exits 1 if it cannot listen.
fn serve(token: [u64; 2], tcp: Option<Remote>) {
    let mut table = Table::default();
    let listening = listen(token).and_then(|listener| {
        let tcp = tcp.map(listen_tcp).transpose()?;
        let bound = tcp.as_ref().map(|(_, addr, _)| *addr);
        make_named_objects(&mut table, bound)?;
        Ok((listener, tcp.map(|(fd, _, key)| (fd, key))))
    });
    let (listener, tcp) = match listening {
        Ok(listening) => listening,
        Err(e) => {
            eprintln!("multiproc manager: cannot listen: {e}");
            crate::exit(1);
        }
    };
    let mut server = Server {
        listener,
        tcp,
        id: ServerId {
            pid: std::process::id() as i32,
            token,
        },
        clients: Vec::new(),
        table,
        stopping: false,
        last_client: 0,
    };
    server.run();
}

/// Listens on `remote`'s address, non-blocking: the listener, the address it listens on (its
/// port, if 0 was asked for), and the key its clients must know.
fn listen_tcp(remote: Remote) -> io::Result<(OwnedFd, SocketAddr, AuthKey)> {
    let listener = TcpListener::bind(remote.addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    Ok((listener.into(), bound, remote.authkey))
}

/// Makes the objects every manager starts with, at their known numbers: the TCP address it
/// listens on, if any, and the table of published names.
fn make_named_objects(table: &mut Table, bound: Option<SocketAddr>) -> io::Result<()> {
    let bound = wire::encode(&bound).map_err(io::Error::other)?;
    let made = [
        (ADDRESS_OBJ, Op::NewNamespace { value: bound }),
        (REGISTRY_OBJ, Op::NewDict),
    ];
    for (obj, op) in made {
        let reply = table.apply(Caller { id: 0, pid: 0 }, Request { obj: MANAGER, op });
        if reply.and_then(Result::ok) != wire::encode(&obj).ok() {
            return Err(io::Error::other("the object table did not start empty"));
        }
    }
    Ok(())
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
    /// The TCP listener and the key its clients must know, if the server listens on TCP.
    tcp: Option<(OwnedFd, AuthKey)>,
    /// Who this server is, as a TCP client is told once it passed the handshake.
    id: ServerId,
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
            let listeners = std::iter::once(&self.listener).chain(self.tcp.as_ref().map(|t| &t.0));
            let first_client = 1 + usize::from(self.tcp.is_some());
            let mut fds: Vec<libc::pollfd> = listeners
                .map(|fd| (fd, libc::POLLIN))
                .chain(self.clients.iter().map(|c| (&c.fd, c.interest())))
                .map(|(fd, events)| libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events,
                    revents: 0,
                })
                .collect();
            let deadline = earliest(self.table.next_deadline(), self.handshake_deadline());
            if wait_for_work(&mut fds, deadline).is_err() {
                return;
            }
            let now = Instant::now();
            self.table.expire(now);
            if fds[0].revents != 0 {
                self.accept_all();
            }
            if first_client > 1 && fds[1].revents != 0 {
                self.accept_tcp();
            }
            for (client, fd) in self.clients.iter_mut().zip(&fds[first_client..]) {
                if fd.revents != 0 {
                    client.serve(&mut self.table, &mut self.stopping);
                }
                if client.handshake_expired(now) {
                    client.open = false;
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

    /// Takes every waiting TCP connection, and challenges it: it is served once it answers.
    fn accept_tcp(&mut self) {
        let Some((listener, key)) = &self.tcp else {
            return;
        };
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        while let Ok(raw) = socket::accept4(listener.as_raw_fd(), flags) {
            // SAFETY: accept4 just returned this descriptor; nothing else owns it.
            let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(raw) });
            // Requests and answers are small: send each at once.
            let _ = stream.set_nodelay(true);
            let fd = OwnedFd::from(stream);
            let Ok((handshake, challenge)) = ServerHandshake::start(*key, self.id) else {
                continue;
            };
            self.last_client += 1;
            // A TCP peer's pid is unknown: a lock it held is reported as held by pid 0.
            let caller = Caller {
                id: self.last_client,
                pid: 0,
            };
            let mut client = Client::new(fd, caller);
            client.handshake = Some((handshake, Instant::now() + HANDSHAKE_PATIENCE));
            client.output = challenge;
            client.flush();
            self.clients.push(client);
        }
    }

    /// When the oldest handshake still waiting for its answer runs out of time.
    fn handshake_deadline(&self) -> Option<Instant> {
        let deadlines = self.clients.iter().filter_map(|c| c.handshake.as_ref());
        deadlines.map(|(_, deadline)| *deadline).min()
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
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
    /// A TCP client that has not answered its challenge yet, and until when it may.
    handshake: Option<(ServerHandshake, Instant)>,
}

impl Client {
    fn new(fd: OwnedFd, caller: Caller) -> Self {
        Client {
            fd,
            caller,
            input: Vec::new(),
            output: Vec::new(),
            open: true,
            handshake: None,
        }
    }

    /// Whether the client is still to answer its challenge at `now`, too late.
    fn handshake_expired(&self, now: Instant) -> bool {
        self.handshake
            .as_ref()
            .is_some_and(|(_, deadline)| now >= *deadline)
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
        // The buffer grows as a large request arrives, not as its header announces; before the
        // handshake, only as far as a handshake frame may go.
        let most = match self.handshake {
            Some(_) => (MAX_HANDSHAKE_FRAME as usize).saturating_sub(have).max(1),
            None => want.clamp(CHUNK, MAX_READ),
        };
        self.input.resize(have + most, 0);
        let read = sys::read_some(self.fd.as_fd(), &mut self.input[have..]);
        self.input
            .truncate(have + read.as_ref().map_or(0, |n| n.unwrap_or(0)));
        match read {
            Ok(Some(0)) | Err(_) => self.open = false,
            Ok(_) if !self.authenticated() => {}
            Ok(_) => {
                let answered = answer_requests(self.caller, &self.input, table, &mut self.output);
                self.input.drain(..answered.consumed);
                *stopping |= answered.stop;
                self.open &= !answered.hang_up;
            }
        }
    }

    /// Whether the client passed its handshake, if it had one: judges the answer read so far,
    /// queues the verdict, and hangs up on a client that failed.
    fn authenticated(&mut self) -> bool {
        let Some((handshake, _)) = &self.handshake else {
            return true;
        };
        match handshake.step(&self.input) {
            Step::Incomplete => false,
            Step::Refused { verdict } => {
                self.output.extend_from_slice(&verdict);
                self.open = false;
                false
            }
            Step::Accepted { consumed, verdict } => {
                self.output.extend_from_slice(&verdict);
                self.input.drain(..consumed);
                self.handshake = None;
                true
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
