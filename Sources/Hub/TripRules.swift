import Foundation

/// What a client asks to change in a trip. Absent fields change nothing.
public struct TripUpdate: Sendable, Equatable, Codable {
    public var status: TripStatus?
    public var riderID: Int?
    public var driverID: Int?

    public init(status: TripStatus? = nil, riderID: Int? = nil, driverID: Int? = nil) {
        self.status = status
        self.riderID = riderID
        self.driverID = driverID
    }
}

/// What a rider asks for when requesting a trip.
public struct TripRequest: Sendable, Equatable {
    public var pickUpAddress: String
    public var dropOffAddress: String
    public var riderID: Int?
    /// Coordinates of the pick-up; with them only drivers nearby are alerted.
    public var pickUpLocation: GeoPoint?
    public var dropOffLocation: GeoPoint?

    public init(
        pickUpAddress: String, dropOffAddress: String, riderID: Int? = nil,
        pickUpLocation: GeoPoint? = nil, dropOffLocation: GeoPoint? = nil
    ) {
        self.pickUpAddress = pickUpAddress
        self.dropOffAddress = dropOffAddress
        self.riderID = riderID
        self.pickUpLocation = pickUpLocation
        self.dropOffLocation = dropOffLocation
    }
}

/// Where the driver is when it asks to pick its rider up (`IN_PROGRESS`), and how close to the
/// pick-up point it must be (`PickUpPolicy.pickUpRadius`; 0: not checked).
public struct PickUpCheck: Sendable, Equatable {
    public var radius: Double
    /// The driver's latest known position; nil when none is known.
    public var driverPosition: GeoPoint?

    public init(radius: Double, driverPosition: GeoPoint?) {
        self.radius = radius
        self.driverPosition = driverPosition
    }
}

/// The trip state machine and its authorization rules, as pure functions so that every
/// status pair and role can be checked in a table. `TripActor` is their only caller at run time.
public enum TripRules {
    /// Longest address accepted, the reference's column size.
    public static let maxAddressLength = 255

    /// Validates a trip request and returns the new `REQUESTED` trip.
    public static func newTrip(
        _ request: TripRequest, by sender: Principal, id: UUID = UUID(), at now: Timestamp = .now()
    ) throws(HubError) -> Trip {
        guard sender.group == .rider else {
            throw HubError(.forbidden, "Only riders can request trips.")
        }
        if let rider = request.riderID, rider != sender.userID {
            throw HubError(.forbidden, "A rider can only request trips for itself.")
        }
        try validateAddress(request.pickUpAddress, field: "pick_up_address")
        try validateAddress(request.dropOffAddress, field: "drop_off_address")
        for (point, field) in [(request.pickUpLocation, "pick_up_location"), (request.dropOffLocation, "drop_off_location")] {
            if let point { try LocationRules.validate(point, field: field) }
        }
        return Trip(
            id: id, created: now, updated: now, pickUpAddress: request.pickUpAddress,
            dropOffAddress: request.dropOffAddress, status: .requested, riderID: sender.userID, driverID: nil,
            pickUpLocation: request.pickUpLocation, dropOffLocation: request.dropOffLocation, seq: 1
        )
    }

    /// Applies an update by `sender` to `trip`, or explains why it may not happen.
    ///
    /// A `rider`/`driver` id in the update may name the sender or repeat the trip's own;
    /// anything else is `forbidden`. Only drivers move trips, only forward; the first driver
    /// to move a `REQUESTED` trip becomes its driver and every other driver gets `trip_taken`.
    public static func apply(
        _ update: TripUpdate, by sender: Principal, to trip: Trip, at now: Timestamp = .now(), pickUp: PickUpCheck? = nil
    ) throws(HubError) -> Trip {
        if let rider = update.riderID, rider != sender.userID, rider != trip.riderID {
            throw HubError(.forbidden, "The rider of a trip cannot be changed to user \(rider).")
        }
        if let driver = update.driverID, driver != sender.userID, driver != trip.driverID {
            throw HubError(.forbidden, "A driver can only make itself a trip's driver.")
        }
        guard sender.group == .driver else {
            throw HubError(.forbidden, "Only the trip's driver can update a trip.")
        }
        if let current = trip.driverID, current != sender.userID {
            throw HubError(.tripTaken, "Another driver has taken this trip.")
        }
        if update.status == .canceled {
            throw HubError(.invalidTransition, "Only the trip's rider cancels a trip, with cancel.trip.")
        }
        let target = update.status ?? trip.status
        guard target > trip.status else {
            throw HubError(
                .invalidTransition, "A trip moves forward only: \(trip.status.rawValue) cannot become \(target.rawValue)."
            )
        }
        if target == .inProgress, let pickUp, pickUp.radius > 0, let point = trip.pickUpLocation {
            guard let position = pickUp.driverPosition else {
                throw HubError(
                    .tooFarFromPickUp, "Your position is not known: send your location at the pick-up before picking the rider up."
                )
            }
            let distance = position.distance(to: point)
            guard distance <= pickUp.radius else {
                throw HubError(
                    .tooFarFromPickUp,
                    "You are \(Int(distance.rounded())) m from the pick-up; pick the rider up within \(Int(pickUp.radius.rounded())) m of it."
                )
            }
        }
        var next = trip
        next.status = target
        next.driverID = sender.userID
        next.updated = max(now, trip.updated)
        next.seq = trip.seq + 1
        return next
    }

    /// Cancels a trip for its rider: only from `REQUESTED` or `STARTED`.
    public static func cancel(_ trip: Trip, by sender: Principal, at now: Timestamp = .now()) throws(HubError) -> Trip {
        guard sender.group == .rider, trip.riderID == sender.userID else {
            throw HubError(.forbidden, "Only the trip's rider can cancel it.")
        }
        guard trip.status == .requested || trip.status == .started else {
            throw HubError(
                .invalidTransition, "A trip can be canceled while REQUESTED or STARTED, not \(trip.status.rawValue)."
            )
        }
        var next = trip
        next.status = .canceled
        next.cancelReason = .riderCanceled
        next.updated = max(now, trip.updated)
        next.seq = trip.seq + 1
        return next
    }

    /// Ends a trip that no driver took: `CANCELED` with `no_driver_found`, only from `REQUESTED`.
    public static func endWithoutDriver(_ trip: Trip, at now: Timestamp = .now()) throws(HubError) -> Trip {
        guard trip.status == .requested else {
            throw HubError(.invalidTransition, "Only a trip that waits for a driver can end without one, not \(trip.status.rawValue).")
        }
        var next = trip
        next.status = .canceled
        next.cancelReason = .noDriverFound
        next.updated = max(now, trip.updated)
        next.seq = trip.seq + 1
        return next
    }

    private static func validateAddress(_ address: String, field: String) throws(HubError) {
        guard !address.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw HubError(.invalid, "\(field) may not be blank.")
        }
        // Counted in Unicode scalars, as the reference's database column counts characters.
        guard address.unicodeScalars.count <= maxAddressLength else {
            throw HubError(.invalid, "\(field) has more than \(maxAddressLength) characters.")
        }
    }
}
