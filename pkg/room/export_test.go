package room

// LiveBuffer is liveBuffer, for the tests outside the package.
const LiveBuffer = liveBuffer
