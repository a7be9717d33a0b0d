/// A known bug the simulator plants in a hub to prove it finds bugs (`Hub.Settings.plantedBug`).
///
/// SPI: only code that imports `@_spi(Simulation) import Hub` can name it, so the product's
/// configuration (files, environment, flags) can never switch one on.
@_spi(Simulation)
public enum PlantedBug: Sendable, Equatable {
    /// Accept (an update to `STARTED`) is checked against the trip as if it still waited for a
    /// driver: it skips the status check, so a second driver can take a taken trip.
    case acceptSkipsStatusCheck
    /// A GPS fix is handed to its trip without its sender's connection, so the driver that sent
    /// it is sent it back (`Hub.recordFix`): a slip in the path every fix takes.
    case fixEchoedToSender
    /// When a trip stops waiting (taken, canceled, no driver found), the drivers holding its
    /// offers are neither told nor forgotten (`TripActor.commit`): offers outlive their trip.
    case offersOutliveTheirTrip
}
