//! [`DnsServer`]: a DNS server on loopback answering from tables the test may change at any time.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Name -> IPv4 addresses.
type ATable = Arc<Mutex<HashMap<String, Vec<Ipv4Addr>>>>;
/// Name -> IPv6 addresses.
type AaaaTable = Arc<Mutex<HashMap<String, Vec<Ipv6Addr>>>>;
/// Service name -> (target host, port).
type SrvTable = Arc<Mutex<HashMap<String, Vec<(String, u16)>>>>;

/// A UDP DNS server on 127.0.0.1 (random port), on its own thread, so blocking tests and tokio
/// tests alike can use it.
///
/// - A queries are answered from [`DnsServer::set_a`]'s table, AAAA queries from
///   [`DnsServer::set_aaaa`]'s, SRV queries from [`DnsServer::set_srv`]'s. A query for a type
///   the name lacks (AAAA for a name with A records only, and the reverse) gets an empty
///   NOERROR answer; a name in no table gets NXDOMAIN.
/// - Every answer has TTL 300 s, so a resolver that caches would be caught by a test that
///   changes the table between scrapes.
/// - Names under `blackhole.` never get an answer (a DNS server that hangs).
///
/// Stopped and joined on drop.
pub struct DnsServer {
    /// Where it listens (`--dns-server`).
    pub addr: SocketAddr,
    /// The A table.
    pub a: ATable,
    /// The AAAA table.
    pub aaaa: AaaaTable,
    /// The SRV table.
    pub srv: SrvTable,
    /// Queries received (answered or not).
    pub queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Binds a random UDP port on 127.0.0.1 and starts answering.
    pub fn start() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the DNS server");
        // The stop flag is looked at least this often; Drop also wakes the thread up at once.
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set a read timeout");
        let addr = sock.local_addr().expect("the DNS server's address");
        let a = ATable::default();
        let aaaa = AaaaTable::default();
        let srv = SrvTable::default();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ta, t6, ts, tq, stopped) = (
            a.clone(),
            aaaa.clone(),
            srv.clone(),
            queries.clone(),
            stop.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !stopped.load(Ordering::SeqCst) {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                tq.fetch_add(1, Ordering::SeqCst);
                if let Some(resp) = answer(&q, &ta, &t6, &ts) {
                    if let Ok(bytes) = resp.to_vec() {
                        let _ = sock.send_to(&bytes, peer);
                    }
                }
            }
        });
        Self {
            addr,
            a,
            aaaa,
            srv,
            queries,
            stop,
            thread: Some(thread),
        }
    }

    /// Sets the A records of `name` (lowercase, without the trailing dot).
    pub fn set_a(&self, name: &str, ips: &[Ipv4Addr]) {
        self.a.lock().unwrap().insert(name.to_owned(), ips.to_vec());
    }

    /// Sets the AAAA records of `name` (lowercase, without the trailing dot).
    pub fn set_aaaa(&self, name: &str, ips: &[Ipv6Addr]) {
        self.aaaa
            .lock()
            .unwrap()
            .insert(name.to_owned(), ips.to_vec());
    }

    /// Sets the SRV records of `name`: (target host, port) each.
    pub fn set_srv(&self, name: &str, targets: &[(&str, u16)]) {
        self.srv.lock().unwrap().insert(
            name.to_owned(),
            targets.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
        );
    }
}

/// The response to `q`, or `None` for a query that gets no answer.
fn answer(q: &Message, a: &ATable, aaaa: &AaaaTable, srv: &SrvTable) -> Option<Message> {
    if q.queries()
        .iter()
        .any(|q| q.name().to_utf8().starts_with("blackhole."))
    {
        return None;
    }
    let mut resp = Message::new();
    resp.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_op_code(q.op_code())
        .set_recursion_desired(q.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    resp.add_queries(q.queries().to_vec());
    let mut found_name = false;
    for query in q.queries() {
        let name = query.name().to_utf8();
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        match query.query_type() {
            RecordType::A => {
                if let Some(ips) = a.lock().unwrap().get(&key) {
                    found_name = true;
                    for ip in ips {
                        resp.add_answer(Record::from_rdata(
                            query.name().clone(),
                            300,
                            RData::A(A(*ip)),
                        ));
                    }
                } else {
                    // The name may exist with AAAA records only: NOERROR, no answer.
                    found_name = aaaa.lock().unwrap().contains_key(&key);
                }
            }
            RecordType::AAAA => {
                if let Some(ips) = aaaa.lock().unwrap().get(&key) {
                    found_name = true;
                    for ip in ips {
                        resp.add_answer(Record::from_rdata(
                            query.name().clone(),
                            300,
                            RData::AAAA(AAAA(*ip)),
                        ));
                    }
                } else {
                    // The name may exist with A records only: NOERROR, no answer.
                    found_name = a.lock().unwrap().contains_key(&key);
                }
            }
            RecordType::SRV => {
                if let Some(list) = srv.lock().unwrap().get(&key) {
                    found_name = true;
                    for (target, port) in list {
                        resp.add_answer(Record::from_rdata(
                            query.name().clone(),
                            300,
                            RData::SRV(SRV::new(
                                0,
                                0,
                                *port,
                                Name::from_ascii(format!("{target}.")).unwrap(),
                            )),
                        ));
                    }
                }
            }
            _ => {
                found_name =
                    a.lock().unwrap().contains_key(&key) || aaaa.lock().unwrap().contains_key(&key);
            }
        }
    }
    if !found_name {
        resp.set_response_code(ResponseCode::NXDomain);
    }
    Some(resp)
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the thread from its wait instead of waiting out the read timeout.
        if let Ok(s) = UdpSocket::bind("127.0.0.1:0") {
            let _ = s.send_to(&[], self.addr);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
