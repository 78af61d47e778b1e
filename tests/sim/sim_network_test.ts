import assert from "node:assert/strict";
import { type NetworkFaults, RELIABLE_NETWORK, SimNetwork } from "./sim_network.ts";
import { SimRandom } from "./sim_random.ts";

interface TestMessage {
  from: number;
  to: number;
  body: { sequence: number };
}

function network(faults: NetworkFaults, inFlightMax = 10_000): SimNetwork<TestMessage> {
  return new SimNetwork<TestMessage>(new SimRandom(11), { faults, inFlightMax });
}

function deliverAll(net: SimNetwork<TestMessage>, now: number): TestMessage[] {
  const delivered: TestMessage[] = [];
  for (let message = net.deliverNext(now); message !== undefined; message = net.deliverNext(now)) {
    delivered.push(message);
  }
  return delivered;
}

function sendMany(net: SimNetwork<TestMessage>, count: number, from = 1, to = 2): void {
  for (let sequence = 0; sequence < count; sequence++) {
    net.send({ from, to, body: { sequence } }, 0);
  }
}

Deno.test("SimNetwork delivers a copy of each message after its delay, not before", () => {
  const net = network({ ...RELIABLE_NETWORK, delayMin: 3, delayMax: 3 });
  const message: TestMessage = { from: 1, to: 2, body: { sequence: 1 } };
  net.send(message, 10);
  assert.deepEqual(deliverAll(net, 12), []);
  const [delivered] = deliverAll(net, 13);
  assert.deepEqual(delivered, message);
  assert.notEqual(delivered?.body, message.body);
});

Deno.test("SimNetwork drops, duplicates and reorders in the proportions configured", () => {
  const net = network({
    dropProbability: 0.2,
    duplicateProbability: 0.1,
    delayMin: 1,
    delayMax: 20,
  });
  sendMany(net, 2000);
  const delivered = deliverAll(net, 100);
  assert.equal(delivered.length, 2000 - net.statistics.dropped + net.statistics.duplicated);
  assert.ok(
    net.statistics.dropped > 300 && net.statistics.dropped < 500,
    `dropped ${net.statistics.dropped}`,
  );
  assert.ok(net.statistics.duplicated > 100 && net.statistics.duplicated < 220);
  const sequences = delivered.map((message) => message.body.sequence);
  assert.notDeepEqual(
    sequences,
    [...sequences].sort((a, b) => a - b),
    "random delays must reorder",
  );
});

Deno.test("SimNetwork.partition() blocks both directions, including messages already in flight", () => {
  const net = network({ ...RELIABLE_NETWORK, delayMin: 5, delayMax: 5 });
  sendMany(net, 3, 1, 2);
  net.partition([1], [2, 3]);
  sendMany(net, 3, 2, 1);
  sendMany(net, 3, 3, 2);
  const delivered = deliverAll(net, 100);
  assert.deepEqual(delivered.map((message) => `${message.from}>${message.to}`), [
    "3>2",
    "3>2",
    "3>2",
  ]);
  net.heal();
  sendMany(net, 1, 2, 1);
  assert.equal(deliverAll(net, 200).length, 1);
});

Deno.test("SimNetwork.partitionOneWay() cuts only the direction asked for", () => {
  const net = network(RELIABLE_NETWORK);
  net.partitionOneWay([1], [2]);
  assert.equal(net.send({ from: 1, to: 2, body: { sequence: 0 } }, 0), "blocked");
  assert.equal(net.send({ from: 2, to: 1, body: { sequence: 0 } }, 0), "sent");
  sendMany(net, 2, 1, 2);
  sendMany(net, 2, 2, 1);
  assert.deepEqual(deliverAll(net, 10).map((message) => message.from), [2, 2, 2]);
  assert.deepEqual(net.blockedLinks(), ["1>2"]);
});

Deno.test("SimNetwork.forget() drops messages to and from a node, and the in-flight bound holds", () => {
  const net = network(RELIABLE_NETWORK, 5);
  sendMany(net, 3, 1, 2);
  sendMany(net, 3, 2, 3);
  assert.equal(net.inFlight, 5);
  net.forget(1);
  assert.deepEqual(deliverAll(net, 10).map((message) => message.from), [2, 2]);
});

Deno.test("SimNetwork lets stragglers arrive after every ordinary message", () => {
  const net = network({
    ...RELIABLE_NETWORK,
    delayMax: 5,
    stragglerProbability: 0.1,
    stragglerDelayMax: 500,
  });
  sendMany(net, 1000);
  const early = deliverAll(net, 5).length;
  const late = deliverAll(net, 500).length;
  assert.equal(early + late, 1000);
  assert.ok(late > 50 && late < 150, `${late} stragglers`);
});

Deno.test("SimNetwork replays identically from the same seed", () => {
  const run = () => {
    const net = network({
      dropProbability: 0.3,
      duplicateProbability: 0.3,
      delayMin: 1,
      delayMax: 9,
    });
    sendMany(net, 200);
    return deliverAll(net, 50).map((message) => message.body.sequence);
  };
  assert.deepEqual(run(), run());
});
