import Benchmark
import BenchmarkWorkloads
import NIOCore
@_spi(Benchmarks) import Web

/// A client's text frame parsed as the socket parses it (`ClientMessageParser.parse` on the
/// frame's bytes, JSON to the typed message), for the three frames a busy hub reads most: a
/// driver's fix, a driver's trip update and a rider's trip request, spelled as the load
/// generator and the browser client send them. One sample is 1,000 parses of the same frame.
let benchmarks: @Sendable () -> Void = {
    let frames: [(type: String, text: String)] = [
        (
            "update.location",
            #"{"type":"update.location","data":{"lat":52.5200066,"lng":13.4049540,"heading":87.5,"#
                + #""speed":11.2,"accuracy":5.0,"timestamp":1764590400123}}"#
        ),
        (
            "update.trip",
            #"{"type":"update.trip","data":{"id":"6f1c2a9e-8d2b-4c1a-9a57-2f0c7e3b5d41","status":"STARTED"}}"#
        ),
        (
            "create.trip",
            #"{"type":"create.trip","data":{"rider":1234,"pick_up_address":"1234 Oak Avenue, Springfield","#
                + #""drop_off_address":"87 River Road, Riverton","pick_up_location":{"lat":52.5200066,"lng":13.404954},"#
                + #""drop_off_location":{"lat":52.4862,"lng":13.4250}}}"#
        ),
    ]
    for (type, text) in frames {
        let frame = ByteBuffer(string: text)
        Benchmark(
            type, configuration: HotPath.configuration(),
            closure: { benchmark in
                for _ in benchmark.scaledIterations {
                    blackHole(ClientFrameParsing.parse(frame))
                }
            },
            setup: {
                guard ClientFrameParsing.parse(frame).type == type else {
                    throw Unparsed(description: "The \(type) frame does not parse as one: \(text)")
                }
            }
        )
    }
}

struct Unparsed: Error, CustomStringConvertible {
    let description: String
}
