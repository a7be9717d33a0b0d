import Foundation
import Testing

@testable import Hub
import TestSupport

@Suite("TripRules: the trip state machine and its authorization rules", MachineLoad.shared)
struct TripRulesTests {
    static let riderID = 1
    static let otherRiderID = 2
    static let driverID = 10
    static let otherDriverID = 11
    static let strangerID = 99
    static let later = Timestamp(microseconds: Fixture.epoch.microseconds + 5_000_000)

    /// Who sends an update, relative to the trip it is about.
    enum Role: String, CaseIterable, CustomTestStringConvertible {
        case tripDriver = "the trip's driver"
        case otherDriver = "another driver"
        case unassignedDriver = "a driver, on an unassigned REQUESTED trip"
        case tripRider = "the trip's rider"
        case otherRider = "another rider"

        var testDescription: String { rawValue }

        var sender: Principal {
            switch self {
            case .tripDriver: Principal(userID: TripRulesTests.driverID, group: .driver)
            case .otherDriver, .unassignedDriver: Principal(userID: TripRulesTests.otherDriverID, group: .driver)
            case .tripRider: Principal(userID: TripRulesTests.riderID, group: .rider)
            case .otherRider: Principal(userID: TripRulesTests.otherRiderID, group: .rider)
            }
        }

        /// The statuses the trip can be in for this role.
        var fromStatuses: [TripStatus] {
            self == .unassignedDriver ? [.requested] : TripStatus.allCases
        }

        func trip(in status: TripStatus) -> Trip {
            Fixture.trip(
                status: status, riderID: TripRulesTests.riderID,
                driverID: self == .unassignedDriver ? nil : TripRulesTests.driverID
            )
        }
    }

    struct Move: CustomTestStringConvertible, Sendable {
        let role: Role
        let from: TripStatus
        let to: TripStatus?

        var testDescription: String { "\(role.rawValue): \(from.rawValue) → \(to?.rawValue ?? "(no status)")" }

        /// Every from/to pair for every role; `to == nil` is an update without a status.
        static let all: [Move] = Role.allCases.flatMap { role in
            role.fromStatuses.flatMap { from in
                ([nil] + TripStatus.allCases).map { Move(role: role, from: from, to: $0) }
            }
        }

        /// What the rules promise, written out case by case.
        var expectedError: HubError.Code? {
            switch role {
            case .tripRider, .otherRider:
                return .forbidden
            case .otherDriver:
                return .tripTaken
            case .tripDriver, .unassignedDriver:
                // Only the rider cancels, with cancel.trip.
                guard let to, to != .canceled else { return .invalidTransition }
                return to.rank > from.rank ? nil : .invalidTransition
            }
        }
    }

    @Test("every status pair for every role: only drivers move trips, strictly forward", arguments: Move.all)
    func transitionTable(_ move: Move) throws {
        let sender = move.role.sender
        let trip = move.role.trip(in: move.from)
        let result = Result { () throws(HubError) -> Trip in
            try TripRules.apply(TripUpdate(status: move.to), by: sender, to: trip, at: Self.later)
        }

        switch (result, move.expectedError) {
        case (.success(let next), nil):
            #expect(next.status == move.to)
            #expect(next.driverID == sender.userID)
            #expect(next.riderID == trip.riderID)
            #expect(next.id == trip.id)
            #expect(next.created == trip.created)
            #expect(next.updated == Self.later)
            #expect(next.pickUpAddress == trip.pickUpAddress)
            #expect(next.dropOffAddress == trip.dropOffAddress)
            #expect(next.seq == trip.seq + 1)
        case (.failure(let error), let expected?):
            #expect(error.code == expected)
            #expect(!error.message.isEmpty)
        case (.success(let next), let expected?):
            Issue.record("expected \(expected), but the trip moved to \(next.status) with driver \(String(describing: next.driverID))")
        case (.failure(let error), nil):
            Issue.record("expected the move to succeed, got \(error.code): \(error.message)")
        }
    }

    @Test("the table covers 4 roles × 5 from-statuses × 6 targets plus the unassigned driver's 6")
    func tableIsComplete() {
        #expect(Move.all.count == 4 * 5 * 6 + 6)
        // Forward pairs: 3 + 2 + 1 + 0 for the trip's driver, 3 for the first driver.
        #expect(Move.all.filter { $0.expectedError == nil }.count == 6 + 3)
    }

    @Test("a COMPLETED trip takes no change from anyone", arguments: Role.allCases.filter { $0 != .unassignedDriver })
    func completedIsTerminal(_ role: Role) {
        let trip = role.trip(in: .completed)
        for target in [nil] + TripStatus.allCases {
            #expect(throws: HubError.self) {
                try TripRules.apply(TripUpdate(status: target, driverID: role.sender.userID), by: role.sender, to: trip)
            }
        }
    }

    // MARK: Identity rules

    struct IdentityCase: CustomTestStringConvertible, Sendable {
        let name: String
        let role: Role
        let from: TripStatus
        let update: TripUpdate
        /// nil: the update applies.
        let expected: HubError.Code?

        var testDescription: String { name }
    }

    static let identityCases: [IdentityCase] = [
        IdentityCase(
            name: "the trip's driver echoing the trip's rider id and its own driver id (the reference client) moves it",
            role: .tripDriver, from: .started,
            update: TripUpdate(status: .inProgress, riderID: riderID, driverID: driverID), expected: nil
        ),
        IdentityCase(
            name: "a driver accepting with the trip's rider id and its own driver id (the reference client) takes it",
            role: .unassignedDriver, from: .requested,
            update: TripUpdate(status: .started, riderID: riderID, driverID: otherDriverID), expected: nil
        ),
        IdentityCase(
            name: "a driver naming itself in the rider field is allowed and changes nothing about the rider",
            role: .unassignedDriver, from: .requested,
            update: TripUpdate(status: .started, riderID: otherDriverID), expected: nil
        ),
        IdentityCase(
            name: "a rider id that is neither the sender nor the trip's rider is forbidden, even for the trip's driver",
            role: .tripDriver, from: .started,
            update: TripUpdate(status: .inProgress, riderID: strangerID, driverID: driverID), expected: .forbidden
        ),
        IdentityCase(
            name: "a rider id of someone else is forbidden for a driver accepting a REQUESTED trip",
            role: .unassignedDriver, from: .requested,
            update: TripUpdate(status: .started, riderID: strangerID), expected: .forbidden
        ),
        IdentityCase(
            name: "a driver cannot make another user the driver of an unassigned trip",
            role: .unassignedDriver, from: .requested,
            update: TripUpdate(status: .started, driverID: strangerID), expected: .forbidden
        ),
        IdentityCase(
            name: "the trip's driver cannot hand the trip to another user",
            role: .tripDriver, from: .started,
            update: TripUpdate(status: .inProgress, driverID: strangerID), expected: .forbidden
        ),
        IdentityCase(
            name: "another driver repeating the trip's current driver id still finds the trip taken",
            role: .otherDriver, from: .started,
            update: TripUpdate(status: .inProgress, driverID: driverID), expected: .tripTaken
        ),
        IdentityCase(
            name: "another driver naming itself as driver of an assigned trip finds it taken",
            role: .otherDriver, from: .started,
            update: TripUpdate(status: .inProgress, riderID: riderID, driverID: otherDriverID), expected: .tripTaken
        ),
        IdentityCase(
            name: "the trip's rider naming itself cannot move the trip",
            role: .tripRider, from: .requested,
            update: TripUpdate(status: .started, riderID: riderID), expected: .forbidden
        ),
        IdentityCase(
            name: "a rider cannot make itself the driver of a trip",
            role: .tripRider, from: .requested,
            update: TripUpdate(status: .started, driverID: riderID), expected: .forbidden
        ),
        IdentityCase(
            name: "another rider cannot make itself the rider of a trip",
            role: .otherRider, from: .requested,
            update: TripUpdate(status: .started, riderID: otherRiderID), expected: .forbidden
        ),
    ]

    @Test("rider and driver ids in an update may only name the sender or repeat the trip's own", arguments: identityCases)
    func identityRules(_ testCase: IdentityCase) {
        let sender = testCase.role.sender
        let trip = testCase.role.trip(in: testCase.from)
        let result = Result { () throws(HubError) -> Trip in
            try TripRules.apply(testCase.update, by: sender, to: trip)
        }
        switch (result, testCase.expected) {
        case (.success(let next), nil):
            #expect(next.status == testCase.update.status)
            #expect(next.driverID == sender.userID)
            #expect(next.riderID == Self.riderID)
        case (.failure(let error), let expected?):
            #expect(error.code == expected)
        case (.success(let next), let expected?):
            Issue.record("expected \(expected), but the update applied: \(next.status), driver \(String(describing: next.driverID))")
        case (.failure(let error), nil):
            Issue.record("expected the update to apply, got \(error.code): \(error.message)")
        }
    }

    // MARK: Time stamps

    @Test("an update moves `updated` to the time of the change and leaves `created` alone")
    func updatedMovesCreatedDoesNot() throws {
        let trip = Role.tripDriver.trip(in: .started)
        let next = try TripRules.apply(
            TripUpdate(status: .inProgress), by: Role.tripDriver.sender, to: trip, at: Self.later
        )
        #expect(next.updated == Self.later)
        #expect(next.updated > trip.updated)
        #expect(next.created == trip.created)
    }

    @Test("`updated` never goes back, even when the clock does")
    func updatedNeverGoesBack() throws {
        let trip = Fixture.trip(status: .started, driverID: Self.driverID, updated: Self.later)
        let earlier = Timestamp(microseconds: Self.later.microseconds - 1_000)
        let next = try TripRules.apply(TripUpdate(status: .completed), by: Role.tripDriver.sender, to: trip, at: earlier)
        #expect(next.updated == Self.later)
        #expect(next.created == trip.created)
    }

    // MARK: New trips

    @Test("a rider's request becomes a REQUESTED trip of that rider, without a driver")
    func newTripForRider() throws {
        let rider = Principal(userID: Self.riderID, group: .rider)
        let id = UUID()
        for request in [
            Fixture.request,
            TripRequest(pickUpAddress: "A", dropOffAddress: "B", riderID: Self.riderID),
        ] {
            let trip = try TripRules.newTrip(request, by: rider, id: id, at: Self.later)
            #expect(trip.id == id)
            #expect(trip.status == .requested)
            #expect(trip.riderID == Self.riderID)
            #expect(trip.driverID == nil)
            #expect(trip.created == Self.later)
            #expect(trip.updated == Self.later)
            #expect(trip.pickUpAddress == request.pickUpAddress)
            #expect(trip.dropOffAddress == request.dropOffAddress)
        }
    }

    @Test("drivers cannot request trips, not even naming themselves", arguments: [nil, driverID])
    func newTripByDriver(_ riderField: Int?) {
        let driver = Principal(userID: Self.driverID, group: .driver)
        var request = Fixture.request
        request.riderID = riderField
        let error = #expect(throws: HubError.self) { try TripRules.newTrip(request, by: driver) }
        #expect(error?.code == .forbidden)
    }

    @Test("a rider cannot request a trip for someone else", arguments: [otherRiderID, driverID, strangerID])
    func newTripForSomeoneElse(_ riderField: Int) {
        let rider = Principal(userID: Self.riderID, group: .rider)
        var request = Fixture.request
        request.riderID = riderField
        let error = #expect(throws: HubError.self) { try TripRules.newTrip(request, by: rider) }
        #expect(error?.code == .forbidden)
    }

    static let addresses: [(String, Bool)] = [
        ("", false),
        ("   ", false),
        ("\n\t ", false),
        (String(repeating: "a", count: TripRules.maxAddressLength), true),
        (String(repeating: "a", count: TripRules.maxAddressLength + 1), false),
        (String(repeating: "a", count: 10_000), false),
        (" 1 Main Street ", true),
    ]

    @Test("a blank or longer than 255 characters address is invalid, in either field", arguments: addresses)
    func addressValidation(_ address: String, _ isValid: Bool) {
        let rider = Principal(userID: Self.riderID, group: .rider)
        for request in [
            TripRequest(pickUpAddress: address, dropOffAddress: "456 Piney Road"),
            TripRequest(pickUpAddress: "123 Main Street", dropOffAddress: address),
        ] {
            let result = Result { () throws(HubError) -> Trip in try TripRules.newTrip(request, by: rider) }
            switch result {
            case .success:
                #expect(isValid, "address of \(address.count) characters was accepted")
            case .failure(let error):
                #expect(!isValid, "address of \(address.count) characters was refused: \(error.message)")
                #expect(error.code == .invalid)
            }
        }
    }
}
