//! Test DNS server: authoritative answers for a fixed set of names, NXDOMAIN
//! for every other name, over UDP and TCP. It never forwards or recurses, so
//! lookups of invented names stay on this machine.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context as _;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Time to live of every answer record, in seconds. Short, so that a
/// caching resolver soon sees a changed scenario.
const TTL_SECONDS: u32 = 5;

/// Largest UDP payload the server advertises with EDNS and accepts.
const MAX_UDP_PAYLOAD: u16 = 1232;

/// One record: `NAME=IP` for exactly `NAME`, or `*.DOMAIN=IP` for every name
/// below `DOMAIN` (not `DOMAIN` itself, as in DNS wildcards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    name: Name,
    wildcard: bool,
    address: IpAddr,
}

impl DnsRecord {
    /// Creates a record for exactly `name`.
    pub fn new(name: &str, address: IpAddr) -> anyhow::Result<DnsRecord> {
        format!("{name}={address}").parse()
    }

    fn matches(&self, query: &Name) -> bool {
        if self.wildcard {
            self.name.zone_of(query) && query.num_labels() > self.name.num_labels()
        } else {
            self.name == *query
        }
    }
}

impl std::fmt::Display for DnsRecord {
    /// Formats the record as `gitlab-standin dns --record` takes it.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let wildcard = if self.wildcard { "*." } else { "" };
        write!(formatter, "{wildcard}{}={}", self.name, self.address)
    }
}

impl FromStr for DnsRecord {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<DnsRecord> {
        let (name, address) = text
            .split_once('=')
            .with_context(|| format!("invalid record {text:?}: expected NAME=IP"))?;
        let address: IpAddr = address.trim().parse().with_context(|| {
            format!("invalid record {text:?}: {address:?} is not an IP address")
        })?;
        let name = name.trim();
        let (wildcard, domain) = match name.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, name),
        };
        let mut name = Name::from_ascii(domain)
            .with_context(|| format!("invalid record {text:?}: {domain:?} is not a domain name"))?
            .to_lowercase();
        name.set_fqdn(true);
        Ok(DnsRecord {
            name,
            wildcard,
            address,
        })
    }
}

/// Builds the response to one query message, or `None` when the bytes are too
/// short to carry a message id (such packets are dropped).
pub fn answer(records: &[DnsRecord], query: &[u8]) -> Option<Vec<u8>> {
    let response = match Message::from_vec(query) {
        Ok(request) => respond(records, &request),
        Err(_) => {
            let id = u16::from_be_bytes([*query.first()?, *query.get(1)?]);
            Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
        }
    };
    response.to_vec().ok()
}

fn respond(records: &[DnsRecord], request: &Message) -> Message {
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = false;
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(MAX_UDP_PAYLOAD);
        response.edns = Some(edns);
    }
    if request.metadata.message_type != MessageType::Query
        || request.metadata.op_code != OpCode::Query
    {
        response.metadata.response_code = ResponseCode::NotImp;
        return response;
    }
    let [query] = request.queries.as_slice() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    response.add_query(query.clone());
    response.metadata.authoritative = true;

    let name = query.name().to_lowercase();
    let matching: Vec<&DnsRecord> = records
        .iter()
        .filter(|record| record.matches(&name))
        .collect();
    if matching.is_empty() {
        response.metadata.response_code = ResponseCode::NXDomain;
        return response;
    }
    for record in matching {
        let data = match (query.query_type(), record.address) {
            (RecordType::A, IpAddr::V4(address)) => RData::A(A(address)),
            (RecordType::AAAA, IpAddr::V6(address)) => RData::AAAA(AAAA(address)),
            _ => continue,
        };
        // The record carries the queried name, which differs from the
        // record name for wildcard matches.
        response.add_answer(Record::from_rdata(query.name().clone(), TTL_SECONDS, data));
    }
    response
}

/// Serves `records` on a UDP socket and a TCP listener until one of them fails.
pub async fn serve_dns(
    records: Vec<DnsRecord>,
    udp: UdpSocket,
    tcp: TcpListener,
) -> anyhow::Result<()> {
    let records = Arc::new(records);
    tokio::try_join!(serve_udp(records.clone(), udp), serve_tcp(records, tcp))?;
    Ok(())
}

async fn serve_udp(records: Arc<Vec<DnsRecord>>, socket: UdpSocket) -> anyhow::Result<()> {
    let mut buffer = vec![0u8; usize::from(MAX_UDP_PAYLOAD).max(512)];
    loop {
        let (length, peer) = socket.recv_from(&mut buffer).await?;
        if let Some(response) = answer(&records, &buffer[..length])
            && let Err(error) = socket.send_to(&response, peer).await
        {
            tracing::info!(%peer, %error, "failed to send a UDP DNS response");
        }
    }
}

async fn serve_tcp(records: Arc<Vec<DnsRecord>>, listener: TcpListener) -> anyhow::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let records = records.clone();
        tokio::spawn(async move {
            if let Err(error) = serve_tcp_connection(&records, stream).await {
                tracing::debug!(%peer, %error, "DNS TCP connection closed with an error");
            }
        });
    }
}

/// Serves length-prefixed messages (RFC 1035 section 4.2.2) until the client
/// closes the connection.
async fn serve_tcp_connection(records: &[DnsRecord], mut stream: TcpStream) -> std::io::Result<()> {
    loop {
        let length = match stream.read_u16().await {
            Ok(length) => usize::from(length),
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error),
        };
        let mut message = vec![0u8; length];
        stream.read_exact(&mut message).await?;
        let Some(response) = answer(records, &message) else {
            return Ok(());
        };
        let Ok(response_length) = u16::try_from(response.len()) else {
            return Ok(());
        };
        stream.write_u16(response_length).await?;
        stream.write_all(&response).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn records() -> Vec<DnsRecord> {
        vec![
            "gitlab.example.test=10.1.2.3".parse().unwrap(),
            "*.apps.example.test=10.1.2.4".parse().unwrap(),
        ]
    }

    fn ask(name: &str, record_type: RecordType) -> Message {
        let mut query = Message::query();
        query.add_query(Query::query(Name::from_ascii(name).unwrap(), record_type));
        let bytes = answer(&records(), &query.to_vec().unwrap()).unwrap();
        Message::from_vec(&bytes).unwrap()
    }

    #[test]
    fn known_name_gets_a_record() {
        let response = ask("GitLab.Example.Test.", RecordType::A);
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert_eq!(response.answers.len(), 1);
        assert_eq!(
            response.answers[0].data.ip_addr(),
            Some("10.1.2.3".parse().unwrap())
        );
    }

    #[test]
    fn known_name_aaaa_is_empty_noerror() {
        let response = ask("gitlab.example.test.", RecordType::AAAA);
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(response.answers.is_empty());
    }

    #[test]
    fn unknown_name_is_nxdomain() {
        let response = ask("example.test.", RecordType::A);
        assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
        assert!(response.answers.is_empty());
    }

    #[test]
    fn wildcard_matches_only_subdomains() {
        let below = ask("review.apps.example.test.", RecordType::A);
        assert_eq!(below.answers.len(), 1);
        assert_eq!(
            below.answers[0].name,
            Name::from_ascii("review.apps.example.test.").unwrap()
        );
        let apex = ask("apps.example.test.", RecordType::A);
        assert_eq!(apex.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn garbage_gets_formerr() {
        let bytes = answer(&records(), &[0x12, 0x34, 0xff]).unwrap();
        let response = Message::from_vec(&bytes).unwrap();
        assert_eq!(response.metadata.id, 0x1234);
        assert_eq!(response.metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn record_display_parses_back() {
        for text in [
            "gitlab.example.test=10.1.2.3",
            "*.apps.example.test=fd00::1",
        ] {
            let record: DnsRecord = text.parse().unwrap();
            let again: DnsRecord = record.to_string().parse().unwrap();
            assert_eq!(again, record, "{text}");
        }
    }

    #[test]
    fn record_without_ip_is_rejected() {
        let error = "gitlab.example.test=nowhere"
            .parse::<DnsRecord>()
            .unwrap_err();
        assert!(error.to_string().contains("not an IP address"), "{error}");
    }
}
