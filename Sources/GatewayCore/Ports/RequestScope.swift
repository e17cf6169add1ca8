/// The API request a piece of work is done for. The HTTP layer sets it around each request; queued work keeps the id
/// of the request that queued it (`ScheduledWork.requestID`, stored with the job) and the worker sets it again around
/// that work. The log handlers add it to every line written inside, so one id follows a partner's call from the
/// request through the provider calls it caused, now or later.
public enum RequestScope {
    @TaskLocal public static var requestID: String?
}
