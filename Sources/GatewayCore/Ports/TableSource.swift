import Foundation

/// One stored value as SQLite keeps it, on its way to PostgreSQL (`gateway import-sqlite`).
public enum StoredValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
}

/// A database read table by table, in batches: the SQLite file a deployment moving to PostgreSQL copies from.
public protocol TableSource: Sendable {
    /// The table's column names; nil when the source has no such table.
    func columns(of table: String) async throws -> [String]?
    func count(of table: String) async throws -> Int
    /// Up to `limit` rows after position `after` (nil: from the first), each with the values of `columns` in that
    /// order, and the position of the last one read.
    func rows(of table: String, columns: [String], after: Int64?, limit: Int) async throws -> (rows: [[StoredValue]], last: Int64?)
}
