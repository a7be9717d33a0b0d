import Hub

/// What a batched write does with a row whose primary key is already stored.
package enum ConflictAction: Sendable {
    /// The stored row takes the incoming values (latest state wins).
    case update
    /// The stored row stays as it is: for append-only rows, which a retried snapshot sends again.
    case keep
}

extension CancelReason {
    /// A trip's `cancel_reason` column: nil when NULL; throws on a value no store writes.
    static func stored(_ value: String?, tripID: String) throws -> CancelReason? {
        guard let value else { return nil }
        guard let reason = CancelReason(rawValue: value) else {
            throw SnapshotStoreError.unreadableValue(table: "trips", column: "cancel_reason", rowID: tripID, value: value)
        }
        return reason
    }
}

extension GeoPoint {
    /// A trip's location from its nullable columns `<prefix>_lat` and `<prefix>_lng` of `trips`:
    /// nil when both are NULL; throws when only one is, which no store writes.
    static func stored(_ prefix: String, lat: Double?, lng: Double?, tripID: String) throws -> GeoPoint? {
        switch (lat, lng) {
        case let (lat?, lng?):
            return GeoPoint(lat: lat, lng: lng)
        case (nil, nil):
            return nil
        case (nil, _?), (_?, nil):
            let column = prefix + (lat == nil ? "_lat" : "_lng")
            throw SnapshotStoreError.unreadableValue(table: "trips", column: column, rowID: tripID, value: "NULL")
        }
    }
}
