//! Compiles `proto/*.proto` with protox (pure Rust: no `protoc` on the machine, nothing downloaded).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/stream_message.proto",
        "proto/message_types.proto",
        "proto/stores.proto",
        "proto/customers.proto",
        "proto/baskets.proto",
        "proto/payments.proto",
        "proto/ordering.proto",
        "proto/depot.proto",
        "proto/notifications.proto",
        "proto/search.proto",
    ];
    let fds = protox::compile(protos, ["proto"])?;

    // gRPC reflection serves this set, so clients like grpcurl see every service without .proto files.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("mallbots_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
