//! The test DNS server in-process on loopback, over UDP and TCP.

use std::net::SocketAddr;
use std::time::Duration;

use ci_doctor_testbed::DnsRecord;
use ci_doctor_testbed::dns::serve_dns;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

async fn start() -> SocketAddr {
    let records: Vec<DnsRecord> = [
        "gitlab.example.test=10.20.30.40",
        "*.pages.example.test=10.20.30.41",
    ]
    .iter()
    .map(|text| text.parse().unwrap())
    .collect();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(address).await.unwrap();
    tokio::spawn(serve_dns(records, udp, tcp));
    address
}

fn query(name: &str, record_type: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), record_type));
    message
}

async fn ask_udp(server: SocketAddr, message: &Message) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(&message.to_vec().unwrap(), server)
        .await
        .unwrap();
    let mut buffer = vec![0u8; 1500];
    let length = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buffer))
        .await
        .expect("the DNS server answers within 5 s")
        .unwrap();
    Message::from_vec(&buffer[..length]).unwrap()
}

async fn ask_tcp(stream: &mut TcpStream, message: &Message) -> Message {
    let bytes = message.to_vec().unwrap();
    stream.write_u16(bytes.len() as u16).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let length = stream.read_u16().await.unwrap();
    let mut response = vec![0u8; usize::from(length)];
    stream.read_exact(&mut response).await.unwrap();
    Message::from_vec(&response).unwrap()
}

#[tokio::test]
async fn udp_answers_known_name() {
    let server = start().await;
    let request = query("gitlab.example.test.", RecordType::A);
    let response = ask_udp(server, &request).await;
    assert_eq!(response.metadata.id, request.metadata.id);
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.authoritative);
    assert!(!response.metadata.recursion_available);
    assert_eq!(response.answers.len(), 1);
    assert_eq!(
        response.answers[0].data.ip_addr(),
        Some("10.20.30.40".parse().unwrap())
    );
}

#[tokio::test]
async fn udp_unknown_name_is_nxdomain() {
    let server = start().await;
    let response = ask_udp(server, &query("registry.example.test.", RecordType::A)).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    assert!(response.answers.is_empty());
}

#[tokio::test]
async fn udp_aaaa_of_known_name_is_empty() {
    let server = start().await;
    let response = ask_udp(server, &query("gitlab.example.test.", RecordType::AAAA)).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.answers.is_empty());
}

#[tokio::test]
async fn tcp_answers_several_queries_on_one_connection() {
    let server = start().await;
    let mut stream = TcpStream::connect(server).await.unwrap();

    let known = ask_tcp(&mut stream, &query("gitlab.example.test.", RecordType::A)).await;
    assert_eq!(known.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        known.answers[0].data.ip_addr(),
        Some("10.20.30.40".parse().unwrap())
    );

    let wildcard = ask_tcp(
        &mut stream,
        &query("group.pages.example.test.", RecordType::A),
    )
    .await;
    assert_eq!(wildcard.answers.len(), 1);
    assert_eq!(
        wildcard.answers[0].data.ip_addr(),
        Some("10.20.30.41".parse().unwrap())
    );

    let unknown = ask_tcp(&mut stream, &query("example.com.", RecordType::A)).await;
    assert_eq!(unknown.metadata.response_code, ResponseCode::NXDomain);
}
