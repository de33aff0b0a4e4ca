Feature: Creating stores
  A store owner opens a store in the mall; the mall lists it and it can join the
  participating stores.

  Scenario: Creating a store
    When I create a store named "Waldorf Books" located at "Level 1"
    Then the store "Waldorf Books" is located at "Level 1" and is not participating
    And the mall lists the store "Waldorf Books"

  Scenario: A store needs a name
    When I create a store named "" located at "Level 1"
    Then the request is refused with 400 "the store name cannot be blank"

  Scenario: A store needs a location
    When I create a store named "Waldorf Books" located at ""
    Then the request is refused with 400 "the store location cannot be blank"

  Scenario: Rebranding a store
    Given a store "Waldorf Books"
    When the store "Waldorf Books" is rebranded as "Statler Books"
    Then the store "Statler Books" is located at "Level 1" and is not participating

  Scenario: Joining the participating stores
    Given a store "Waldorf Books"
    When the store "Waldorf Books" starts participating
    Then the store "Waldorf Books" is located at "Level 1" and is participating
    And the participating stores include "Waldorf Books"
    When the store "Waldorf Books" starts participating
    Then the request is refused with 400 "the store is already participating"
