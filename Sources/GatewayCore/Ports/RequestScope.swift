import Logging
import Tracing

/// The API request a piece of work is done for. The HTTP layer sets it around each request; queued work keeps the id
/// of the request that queued it (`ScheduledWork.requestID`, stored with the job) and the worker sets it again around
/// that work. The log handlers add it to every line written inside, so one id follows a partner's call from the
/// request through the provider calls it caused, now or later.
public enum RequestScope {
    @TaskLocal public static var requestID: String?
    /// The W3C `traceparent` of the request's own span, kept with the work it queues like `requestID`: the worker's
    /// span for that work is a child of the request's, so one trace holds the request and every provider call it
    /// caused, even hours later. Nil when tracing is off.
    @TaskLocal public static var traceParent: String?
    /// Which attempt at its work a provider call is: 1 for the call a request makes itself, the job's count after.
    @TaskLocal public static var attempt: Int?

    /// The `traceparent` of the span the current task runs in (nil when tracing is off or no span is open).
    public static var currentTraceParent: String? {
        guard let context = InstrumentationContext.current else { return nil }
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryCarrier())
        return carrier["traceparent"]
    }

    /// The trace and span ids of the current span, for log lines.
    public static var currentTraceIDs: (trace: String, span: String)? {
        guard let parent = currentTraceParent else { return nil }
        let fields = parent.split(separator: "-")
        guard fields.count == 4, fields[1].count == 32, fields[2].count == 16 else { return nil }
        return (String(fields[1]), String(fields[2]))
    }

    /// What the log handlers add to every line written in this task: the request's id, and the current span's trace
    /// and span ids when tracing is on (a line can be found from its trace, and the trace from the line).
    public static var logMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = [:]
        if let requestID { metadata["request.id"] = .string(requestID) }
        if let ids = currentTraceIDs {
            metadata["trace.id"] = .string(ids.trace)
            metadata["span.id"] = .string(ids.span)
        }
        return metadata
    }

    /// A context whose spans continue `traceParent` (stored with a job), or a new trace when there is none.
    public static func context(continuing traceParent: String?) -> InstrumentationContext {
        var context = InstrumentationContext.topLevel
        if let traceParent {
            InstrumentationSystem.instrument.extract(["traceparent": traceParent], into: &context, using: DictionaryCarrier())
        }
        return context
    }
}

/// Reads and writes trace headers in a plain dictionary, as W3C propagation names them (lower case).
public struct DictionaryCarrier: Injector, Extractor {
    public init() {}
    public func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
    public func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
